package dev.dfpharness.kinesis;

import java.time.Instant;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.apache.flink.connector.base.source.reader.RecordsBySplits;
import org.apache.flink.connector.base.source.reader.RecordsWithSplitIds;
import org.apache.flink.connector.base.source.reader.splitreader.SplitReader;
import org.apache.flink.connector.base.source.reader.splitreader.SplitsAddition;
import org.apache.flink.connector.base.source.reader.splitreader.SplitsChange;
import software.amazon.awssdk.services.kinesis.KinesisClient;
import software.amazon.awssdk.services.kinesis.model.GetRecordsResponse;
import software.amazon.awssdk.services.kinesis.model.GetShardIteratorRequest;
import software.amazon.awssdk.services.kinesis.model.ProvisionedThroughputExceededException;
import software.amazon.awssdk.services.kinesis.model.Record;
import software.amazon.awssdk.services.kinesis.model.ShardIteratorType;

/**
 * Polls its shards with GetRecords, one shard per fetch, in turn. A throttled GetRecords
 * ({@code ProvisionedThroughputExceededException}, after the SDK's own retries) is not an error:
 * the reader backs off exponentially (from 200 ms, capped at 5 s, with jitter, as AWS's polling
 * reader does) and reads the same shard from the same iterator again; a successful read resets
 * the backoff.
 */
final class ShardSplitReader implements SplitReader<ShardRecord, ShardSplit> {
    private final KinesisOptions options;
    private final KinesisClient client;
    /** shard id → current shard iterator. */
    private final Map<String, String> iterators = new LinkedHashMap<>();
    private final List<String> order = new ArrayList<>();
    private int turn;
    private volatile boolean woken;
    private int throttledInARow;
    private long throttled;
    private final java.util.Random jitter = new java.util.Random(0);

    ShardSplitReader(KinesisOptions options) {
        this.options = options;
        this.client = options.client();
    }

    @Override
    public RecordsWithSplitIds<ShardRecord> fetch() {
        RecordsBySplits.Builder<ShardRecord> out = new RecordsBySplits.Builder<>();
        for (int tried = 0; tried < order.size(); tried++) {
            String shard = order.get(turn++ % order.size());
            GetRecordsResponse response;
            try {
                response = client.getRecords(
                        b -> b.streamARN(options.streamArn).shardIterator(iterators.get(shard))
                                .limit(options.getRecordsMax));
            } catch (ProvisionedThroughputExceededException throttledNow) {
                backOff();
                return out.build();
            }
            throttledInARow = 0;
            for (Record record : response.records()) {
                Instant arrival = record.approximateArrivalTimestamp();
                out.add(shard, new ShardRecord(record.data().asByteArray(),
                        record.sequenceNumber(),
                        arrival == null ? System.currentTimeMillis() : arrival.toEpochMilli()));
            }
            if (response.nextShardIterator() == null) {
                iterators.remove(shard);
                order.remove(shard);
                out.addFinishedSplit(shard);
                return out.build();
            }
            iterators.put(shard, response.nextShardIterator());
            if (!response.records().isEmpty()) {
                return out.build();
            }
        }
        idle();
        return out.build();
    }

    private void backOff() {
        throttled++;
        long ceiling = Math.min(5_000L, 200L << Math.min(throttledInARow++, 5));
        long delay = ceiling / 2 + (long) (jitter.nextDouble() * ceiling / 2);
        if (throttled == 1 || throttled % 100 == 0) {
            org.slf4j.LoggerFactory.getLogger(ShardSplitReader.class).warn(
                    "GetRecords on {} throttled ({} times so far); backing off {} ms",
                    options.streamArn, throttled, delay);
        }
        sleep(delay);
    }

    private void sleep(long millis) {
        long until = System.currentTimeMillis() + millis;
        while (!woken && System.currentTimeMillis() < until) {
            try {
                Thread.sleep(Math.min(50, millis));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                return;
            }
        }
        woken = false;
    }

    private void idle() {
        sleep(options.idlePollMs);
    }

    @Override
    public void handleSplitsChanges(SplitsChange<ShardSplit> change) {
        if (!(change instanceof SplitsAddition)) {
            return;
        }
        for (ShardSplit split : change.splits()) {
            GetShardIteratorRequest.Builder request = GetShardIteratorRequest.builder()
                    .streamARN(options.streamArn).shardId(split.shardId);
            switch (split.position) {
                case "AFTER_SEQUENCE_NUMBER":
                    request.shardIteratorType(ShardIteratorType.AFTER_SEQUENCE_NUMBER)
                            .startingSequenceNumber(split.marker);
                    break;
                case "AT_TIMESTAMP":
                    request.shardIteratorType(ShardIteratorType.AT_TIMESTAMP)
                            .timestamp(Instant.ofEpochMilli(Long.parseLong(split.marker)));
                    break;
                case "TRIM_HORIZON":
                    request.shardIteratorType(ShardIteratorType.TRIM_HORIZON);
                    break;
                default:
                    request.shardIteratorType(ShardIteratorType.LATEST);
            }
            iterators.put(split.shardId, client.getShardIterator(request.build()).shardIterator());
            order.add(split.shardId);
        }
    }

    @Override
    public void wakeUp() {
        woken = true;
    }

    @Override
    public void close() {
        client.close();
    }
}
