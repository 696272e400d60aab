package dev.dfpharness.anomaly;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.api.java.typeutils.RowTypeInfo;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.datastream.SingleOutputStreamOperator;
import org.apache.flink.table.api.Schema;
import org.apache.flink.table.api.bridge.java.StreamTableEnvironment;
import org.apache.flink.types.Row;

/**
 * Puts the detection between the job's CDC table and its sinks: {@code source} (a table whose
 * first column is the raw record, with event time) becomes the view {@code view} with
 * {@link Detection#FIELDS}, keeping the stream's event time and watermarks. Called by the
 * PyFlink job ({@code pipeline/anomaly/main.py}) through its Java gateway, so the job stays one
 * Python file and the records never cross into Python.
 */
public final class DetectionJob {
    private DetectionJob() {}

    /** The operator's id: its state is found by it when a snapshot is restored. */
    public static final String UID = "anomaly-detection";

    static final TypeInformation<Row> OUTPUT = new RowTypeInfo(
            new TypeInformation<?>[] {Types.STRING, Types.STRING, Types.LONG, Types.INT, Types.DOUBLE, Types.STRING,
                Types.STRING, Types.STRING, Types.DOUBLE, Types.STRING, Types.STRING, Types.STRING},
            Detection.FIELDS);

    /** One detector sees every sale: day-level drops need all products, bursts need order. */
    static final class Everything implements KeySelector<Row, Integer> {
        private static final long serialVersionUID = 1L;

        @Override
        public Integer getKey(Row row) {
            return 0;
        }
    }

    public static void register(StreamTableEnvironment tEnv, String source, String view, String profilesJson,
                                String configJson, long latenessSeconds, long maxGapDays) {
        DataStream<Row> lines = tEnv.toDataStream(tEnv.from(source));
        SingleOutputStreamOperator<Row> detected = lines
                .keyBy(new Everything(), Types.INT)
                .process(new DetectFunction(profilesJson, configJson, latenessSeconds, maxGapDays), OUTPUT)
                .uid(UID)
                .name(UID)
                .setParallelism(1);
        Schema withTime = Schema.newBuilder()
                .columnByMetadata("rowtime", "TIMESTAMP_LTZ(3)")
                .watermark("rowtime", "SOURCE_WATERMARK()")
                .build();
        tEnv.createTemporaryView(view, tEnv.fromDataStream(detected, withTime));
    }
}
