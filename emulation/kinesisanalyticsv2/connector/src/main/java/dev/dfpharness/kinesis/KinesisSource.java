package dev.dfpharness.kinesis;

import java.util.Map;
import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.connector.source.Boundedness;
import org.apache.flink.api.connector.source.Source;
import org.apache.flink.api.connector.source.SourceOutput;
import org.apache.flink.api.connector.source.SourceReader;
import org.apache.flink.api.connector.source.SourceReaderContext;
import org.apache.flink.api.connector.source.SplitEnumerator;
import org.apache.flink.api.connector.source.SplitEnumeratorContext;
import org.apache.flink.api.java.typeutils.ResultTypeQueryable;
import org.apache.flink.configuration.Configuration;
import org.apache.flink.connector.base.source.reader.RecordEmitter;
import org.apache.flink.connector.base.source.reader.SingleThreadMultiplexSourceReaderBase;
import org.apache.flink.core.io.SimpleVersionedSerializer;
import org.apache.flink.metrics.MetricGroup;
import org.apache.flink.table.data.RowData;
import org.apache.flink.util.Collector;
import org.apache.flink.util.UserCodeClassLoader;

/** A FLIP-27 source over a Kinesis stream: one split per shard, progress by sequence number. */
public final class KinesisSource
        implements Source<RowData, ShardSplit, EnumeratorState>, ResultTypeQueryable<RowData> {
    private static final long serialVersionUID = 1L;

    private final KinesisOptions options;
    private final DeserializationSchema<RowData> deserializer;

    KinesisSource(KinesisOptions options, DeserializationSchema<RowData> deserializer) {
        this.options = options;
        this.deserializer = deserializer;
    }

    @Override
    public Boundedness getBoundedness() {
        return Boundedness.CONTINUOUS_UNBOUNDED;
    }

    @Override
    public TypeInformation<RowData> getProducedType() {
        return deserializer.getProducedType();
    }

    @Override
    public SourceReader<RowData, ShardSplit> createReader(SourceReaderContext context)
            throws Exception {
        deserializer.open(new DeserializationSchema.InitializationContext() {
            @Override
            public MetricGroup getMetricGroup() {
                return context.metricGroup();
            }

            @Override
            public UserCodeClassLoader getUserCodeClassLoader() {
                return context.getUserCodeClassLoader();
            }
        });
        return new Reader(options, deserializer, context);
    }

    @Override
    public SplitEnumerator<ShardSplit, EnumeratorState> createEnumerator(
            SplitEnumeratorContext<ShardSplit> context) {
        return new ShardEnumerator(context, options, null);
    }

    @Override
    public SplitEnumerator<ShardSplit, EnumeratorState> restoreEnumerator(
            SplitEnumeratorContext<ShardSplit> context, EnumeratorState state) {
        return new ShardEnumerator(context, options, state);
    }

    @Override
    public SimpleVersionedSerializer<ShardSplit> getSplitSerializer() {
        return new ShardSplit.Serializer();
    }

    @Override
    public SimpleVersionedSerializer<EnumeratorState> getEnumeratorCheckpointSerializer() {
        return new EnumeratorState.Serializer();
    }

    /** Mutable progress of one shard: the last sequence number emitted. */
    static final class SplitState {
        final ShardSplit split;
        String lastSequenceNumber;

        SplitState(ShardSplit split) {
            this.split = split;
            this.lastSequenceNumber =
                    "AFTER_SEQUENCE_NUMBER".equals(split.position) ? split.marker : null;
        }

        ShardSplit toSplit() {
            return lastSequenceNumber == null
                    ? split
                    : new ShardSplit(split.shardId, "AFTER_SEQUENCE_NUMBER", lastSequenceNumber);
        }
    }

    static final class Emitter implements RecordEmitter<ShardRecord, RowData, SplitState> {
        private final DeserializationSchema<RowData> deserializer;

        Emitter(DeserializationSchema<RowData> deserializer) {
            this.deserializer = deserializer;
        }

        @Override
        public void emitRecord(ShardRecord record, SourceOutput<RowData> output, SplitState state)
                throws Exception {
            deserializer.deserialize(record.data, new Collector<>() {
                @Override
                public void collect(RowData row) {
                    output.collect(row, record.arrivalMillis);
                }

                @Override
                public void close() {}
            });
            state.lastSequenceNumber = record.sequenceNumber;
        }
    }

    static final class Reader extends SingleThreadMultiplexSourceReaderBase<
            ShardRecord, RowData, ShardSplit, SplitState> {
        Reader(KinesisOptions options, DeserializationSchema<RowData> deserializer,
               SourceReaderContext context) {
            super(() -> new ShardSplitReader(options), new Emitter(deserializer),
                    new Configuration(), context);
        }

        @Override
        protected void onSplitFinished(Map<String, SplitState> finished) {
            // Every record of these shards has been emitted: their children may be read now.
            context.sendSourceEventToCoordinator(new SplitsFinishedEvent(finished.keySet()));
        }

        @Override
        protected SplitState initializedState(ShardSplit split) {
            return new SplitState(split);
        }

        @Override
        protected ShardSplit toSplitType(String splitId, SplitState state) {
            return state.toSplit();
        }
    }
}
