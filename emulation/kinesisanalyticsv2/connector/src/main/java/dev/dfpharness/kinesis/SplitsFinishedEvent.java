package dev.dfpharness.kinesis;

import java.util.Set;
import java.util.TreeSet;
import org.apache.flink.api.connector.source.SourceEvent;

/**
 * A reader tells the enumerator which shards it has read to their end (closed by resharding and
 * drained), so that their children can be handed out: a key's records in a child come after its
 * records in the parent.
 */
public final class SplitsFinishedEvent implements SourceEvent {
    private static final long serialVersionUID = 1L;

    final Set<String> shardIds;

    SplitsFinishedEvent(Set<String> shardIds) {
        this.shardIds = new TreeSet<>(shardIds);
    }

    @Override
    public String toString() {
        return "SplitsFinishedEvent" + shardIds;
    }
}
