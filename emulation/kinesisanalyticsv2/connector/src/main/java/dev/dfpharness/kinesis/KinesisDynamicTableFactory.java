package dev.dfpharness.kinesis;

import java.util.Map;
import java.util.Set;
import org.apache.flink.api.common.serialization.DeserializationSchema;
import org.apache.flink.api.common.serialization.SerializationSchema;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.table.connector.ChangelogMode;
import org.apache.flink.table.connector.format.DecodingFormat;
import org.apache.flink.table.connector.format.EncodingFormat;
import org.apache.flink.table.connector.sink.DynamicTableSink;
import org.apache.flink.table.connector.sink.SinkV2Provider;
import org.apache.flink.table.connector.sink.abilities.SupportsPartitioning;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.table.connector.ProviderContext;
import org.apache.flink.table.connector.source.DataStreamScanProvider;
import org.apache.flink.table.connector.source.DynamicTableSource;
import org.apache.flink.table.connector.source.ScanTableSource;
import org.apache.flink.table.connector.source.abilities.SupportsWatermarkPushDown;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.factories.DeserializationFormatFactory;
import org.apache.flink.table.factories.DynamicTableSinkFactory;
import org.apache.flink.table.factories.DynamicTableSourceFactory;
import org.apache.flink.table.factories.FactoryUtil;
import org.apache.flink.table.factories.SerializationFormatFactory;
import org.apache.flink.table.types.DataType;
import org.apache.flink.table.types.logical.RowType;

/** {@code 'connector' = 'kinesis'}: a Kinesis data stream as a table source or sink. */
public final class KinesisDynamicTableFactory
        implements DynamicTableSourceFactory, DynamicTableSinkFactory {

    @Override
    public String factoryIdentifier() {
        return "kinesis";
    }

    @Override
    public Set<ConfigOption<?>> requiredOptions() {
        return Set.of(KinesisOptions.STREAM_ARN, FactoryUtil.FORMAT, KinesisOptions.AWS_REGION);
    }

    @Override
    public Set<ConfigOption<?>> optionalOptions() {
        return Set.of(KinesisOptions.AWS_ENDPOINT,
                KinesisOptions.INIT_POSITION, KinesisOptions.INIT_TIMESTAMP,
                KinesisOptions.DISCOVERY_INTERVAL, KinesisOptions.IDLE_POLL_INTERVAL,
                KinesisOptions.GET_RECORDS_MAX,
                KinesisOptions.MAX_BATCH, KinesisOptions.MAX_IN_FLIGHT,
                KinesisOptions.MAX_BUFFERED, KinesisOptions.FLUSH_SIZE,
                KinesisOptions.FLUSH_TIMEOUT, KinesisOptions.FAIL_ON_ERROR,
                KinesisOptions.PARTITIONER, KinesisOptions.PARTITIONER_FIELD_DELIMITER);
    }

    @Override
    public DynamicTableSource createDynamicTableSource(Context context) {
        FactoryUtil.TableFactoryHelper helper = FactoryUtil.createTableFactoryHelper(this, context);
        DecodingFormat<DeserializationSchema<RowData>> format =
                helper.discoverDecodingFormat(DeserializationFormatFactory.class, FactoryUtil.FORMAT);
        // As AWS's factory: aws.* and source* options are not validated here (the real
        // connector's credential, EFO and retry options are accepted, unused); any other
        // undeclared option is refused, naming it.
        helper.validateExcept("aws.", "source");
        KinesisOptions options = new KinesisOptions(helper.getOptions());
        return new TableSource(options, format, context.getPhysicalRowDataType());
    }

    @Override
    public DynamicTableSink createDynamicTableSink(Context context) {
        FactoryUtil.TableFactoryHelper helper = FactoryUtil.createTableFactoryHelper(this, context);
        EncodingFormat<SerializationSchema<RowData>> format =
                helper.discoverEncodingFormat(SerializationFormatFactory.class, FactoryUtil.FORMAT);
        // As AWS's factory: aws.* and the HTTP client's sink.http-client.* are not validated.
        helper.validateExcept("aws.", "sink.http-client.");
        KinesisOptions options = new KinesisOptions(helper.getOptions());
        DataType physical = context.getPhysicalRowDataType();
        PartitionKeys keys = PartitionKeys.create(options.partitioner, options.partitionDelimiter,
                (RowType) physical.getLogicalType(),
                context.getCatalogTable().getPartitionKeys(), context.getClassLoader());
        return new TableSink(options, format, physical, keys);
    }

    /**
     * A scan whose watermark (from the table's WATERMARK clause) is generated inside the source,
     * per shard, as AWS's connector does: event time advances only as far as the slowest shard.
     */
    private static final class TableSource implements ScanTableSource, SupportsWatermarkPushDown {
        private final KinesisOptions options;
        private final DecodingFormat<DeserializationSchema<RowData>> format;
        private final DataType physical;
        private WatermarkStrategy<RowData> watermarks = WatermarkStrategy.noWatermarks();

        TableSource(KinesisOptions options, DecodingFormat<DeserializationSchema<RowData>> format,
                    DataType physical) {
            this.options = options;
            this.format = format;
            this.physical = physical;
        }

        @Override
        public ChangelogMode getChangelogMode() {
            return format.getChangelogMode();
        }

        @Override
        public void applyWatermark(WatermarkStrategy<RowData> strategy) {
            this.watermarks = strategy;
        }

        @Override
        public ScanRuntimeProvider getScanRuntimeProvider(ScanContext context) {
            KinesisSource source =
                    new KinesisSource(options, format.createRuntimeDecoder(context, physical));
            WatermarkStrategy<RowData> strategy = watermarks;
            String name = "Kinesis " + options.streamArn;
            return new DataStreamScanProvider() {
                @Override
                public DataStream<RowData> produceDataStream(
                        ProviderContext providerContext, StreamExecutionEnvironment env) {
                    return env.fromSource(source, strategy, name)
                            .uid(providerContext.generateUid("kinesis-source").orElse(name));
                }

                @Override
                public boolean isBounded() {
                    return false;
                }
            };
        }

        @Override
        public DynamicTableSource copy() {
            TableSource copy = new TableSource(options, format, physical);
            copy.watermarks = watermarks;
            return copy;
        }

        @Override
        public String asSummaryString() {
            return "Kinesis (local) " + options.streamArn;
        }
    }

    /**
     * A sink whose records take their partition keys from {@link PartitionKeys} (a {@code PARTITIONED BY}
     * table is accepted as AWS's sink accepts it: its partition columns make the key).
     */
    private static final class TableSink implements DynamicTableSink, SupportsPartitioning {
        private final KinesisOptions options;
        private final EncodingFormat<SerializationSchema<RowData>> format;
        private final DataType physical;
        private final PartitionKeys keys;

        TableSink(KinesisOptions options, EncodingFormat<SerializationSchema<RowData>> format,
                  DataType physical, PartitionKeys keys) {
            this.options = options;
            this.format = format;
            this.physical = physical;
            this.keys = keys;
        }

        @Override
        public ChangelogMode getChangelogMode(ChangelogMode requested) {
            return format.getChangelogMode();
        }

        @Override
        public void applyStaticPartition(Map<String, String> partition) {
            if (keys instanceof PartitionKeys.Fields) {
                ((PartitionKeys.Fields) keys).fix(partition);
            } else if (!partition.isEmpty()) {
                throw new org.apache.flink.table.api.ValidationException(
                        "a static partition needs a PARTITIONED BY table");
            }
        }

        @Override
        public SinkRuntimeProvider getSinkRuntimeProvider(Context context) {
            return SinkV2Provider.of(new KinesisSink(options,
                    format.createRuntimeEncoder(context, physical), keys));
        }

        @Override
        public DynamicTableSink copy() {
            return new TableSink(options, format, physical, keys);
        }

        @Override
        public String asSummaryString() {
            return "Kinesis (local) " + options.streamArn;
        }
    }
}
