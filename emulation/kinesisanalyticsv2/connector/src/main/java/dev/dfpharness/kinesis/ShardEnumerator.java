package dev.dfpharness.kinesis;

import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import org.apache.flink.api.connector.source.SourceEvent;
import org.apache.flink.api.connector.source.SplitEnumerator;
import org.apache.flink.api.connector.source.SplitEnumeratorContext;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import software.amazon.awssdk.services.kinesis.KinesisClient;
import software.amazon.awssdk.services.kinesis.model.ListShardsRequest;
import software.amazon.awssdk.services.kinesis.model.ListShardsResponse;
import software.amazon.awssdk.services.kinesis.model.Shard;

/**
 * Lists the stream's shards periodically (every {@code source.shard.discovery.interval}) and hands
 * each new one to a reader; a shard born of resharding only once its parents have been read to
 * their end, as AWS's connector does, so no key's records are read out of order.
 */
final class ShardEnumerator implements SplitEnumerator<ShardSplit, EnumeratorState> {
    private static final Logger LOG = LoggerFactory.getLogger(ShardEnumerator.class);

    private final SplitEnumeratorContext<ShardSplit> context;
    private final KinesisOptions options;
    private final Set<String> assigned;
    private final Set<String> finished;
    /** shard id → its parents (ParentShardId, AdjacentParentShardId) still listed. */
    private final Map<String, List<String>> parents = new LinkedHashMap<>();
    private final Map<String, ShardSplit> pending = new LinkedHashMap<>();
    private final boolean restored;
    private KinesisClient client;
    private int next;

    ShardEnumerator(SplitEnumeratorContext<ShardSplit> context, KinesisOptions options,
                    EnumeratorState state) {
        this.context = context;
        this.options = options;
        this.assigned = new TreeSet<>(state == null ? Set.of() : state.assigned);
        this.finished = new TreeSet<>(state == null ? Set.of() : state.finished);
        this.restored = state != null;
    }

    @Override
    public void start() {
        client = options.client();
        context.callAsync(this::listShards, this::onShards, 0, options.discoveryIntervalMs);
    }

    private List<Shard> listShards() {
        List<Shard> shards = new ArrayList<>();
        String token = null;
        do {
            ListShardsRequest.Builder request = ListShardsRequest.builder();
            if (token == null) {
                request.streamARN(options.streamArn);
            } else {
                request.nextToken(token);
            }
            ListShardsResponse response = client.listShards(request.build());
            shards.addAll(response.shards());
            token = response.nextToken();
        } while (token != null);
        return shards;
    }

    private void onShards(List<Shard> shards, Throwable error) {
        if (error != null) {
            LOG.warn("listing the shards of {} failed; retrying", options.streamArn, error);
            return;
        }
        boolean first = assigned.isEmpty() && pending.isEmpty() && !restored;
        Set<String> listed = new TreeSet<>();
        shards.forEach(s -> listed.add(s.shardId()));
        for (Shard shard : shards) {
            String id = shard.shardId();
            List<String> mine = new ArrayList<>();
            for (String parent : new String[] {shard.parentShardId(), shard.adjacentParentShardId()}) {
                // A parent past the stream's retention is no longer listed: nothing to wait for.
                if (parent != null && listed.contains(parent)) {
                    mine.add(parent);
                }
            }
            parents.put(id, mine);
            if (assigned.contains(id) || pending.containsKey(id)) {
                continue;
            }
            // The configured start applies to the shards there at start; shards that appear
            // later (resharding) are read from their beginning, so nothing is skipped.
            String position = first ? options.initPosition : "TRIM_HORIZON";
            String marker = null;
            if (position.equals("AT_TIMESTAMP")) {
                marker = String.valueOf(parseTimestamp(options.initTimestamp).toEpochMilli());
            }
            pending.put(id, new ShardSplit(id, position, marker));
        }
        assignPending();
    }

    static Instant parseTimestamp(String text) {
        if (text == null) {
            throw new IllegalArgumentException("AT_TIMESTAMP needs 'source.init.timestamp'");
        }
        try {
            return Instant.ofEpochMilli((long) (Double.parseDouble(text) * 1000));
        } catch (NumberFormatException notANumber) {
            return Instant.parse(text);
        }
    }

    private void assignPending() {
        int readers = context.currentParallelism();
        if (context.registeredReaders().isEmpty() || pending.isEmpty()) {
            return;
        }
        List<String> done = new ArrayList<>();
        for (ShardSplit split : pending.values()) {
            List<String> waitingFor = new ArrayList<>(parents.getOrDefault(split.shardId, List.of()));
            waitingFor.removeAll(finished);
            if (!waitingFor.isEmpty()) {
                continue; // read after its parents, which are still being read
            }
            int owner = next % readers;
            if (!context.registeredReaders().containsKey(owner)) {
                continue;
            }
            context.assignSplit(split, owner);
            LOG.info("assigned {} to reader {}", split, owner);
            assigned.add(split.shardId);
            done.add(split.shardId);
            next++;
        }
        done.forEach(pending::remove);
    }

    @Override
    public void handleSplitRequest(int subtaskId, String requesterHostname) {}

    @Override
    public void addSplitsBack(List<ShardSplit> splits, int subtaskId) {
        for (ShardSplit split : splits) {
            assigned.remove(split.shardId);
            pending.put(split.shardId, split);
        }
        assignPending();
    }

    @Override
    public void addReader(int subtaskId) {
        assignPending();
    }

    @Override
    public void handleSourceEvent(int subtaskId, SourceEvent event) {
        if (event instanceof SplitsFinishedEvent) {
            finished.addAll(((SplitsFinishedEvent) event).shardIds);
            LOG.info("shards read to their end: {}", ((SplitsFinishedEvent) event).shardIds);
            assignPending();
        }
    }

    @Override
    public EnumeratorState snapshotState(long checkpointId) {
        return new EnumeratorState(assigned, finished);
    }

    @Override
    public void close() {
        if (client != null) {
            client.close();
        }
    }
}
