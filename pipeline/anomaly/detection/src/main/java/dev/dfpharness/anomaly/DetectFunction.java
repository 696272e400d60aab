package dev.dfpharness.anomaly;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.ObjectInputStream;
import java.io.ObjectOutputStream;
import java.io.Serializable;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;

import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.runtime.state.FunctionInitializationContext;
import org.apache.flink.runtime.state.FunctionSnapshotContext;
import org.apache.flink.streaming.api.checkpoint.CheckpointedFunction;
import org.apache.flink.streaming.api.functions.KeyedProcessFunction;
import org.apache.flink.types.Row;
import org.apache.flink.util.Collector;

/**
 * The detection operator: holds records until event time has passed them on every shard, then
 * runs {@link Detection} over them in event-time order (record time, then arrival), which is the
 * answer of the reference detector over the time-ordered stream.
 *
 * <p>What it holds (the detection's state, the records waiting for the watermark, the timer it
 * set) lives on the heap and goes into the operator's state when a checkpoint or snapshot is
 * taken, as one serialised value: a state backend that serialises on every access (RocksDB, as
 * Managed Flink uses) would otherwise copy the whole detector for every record. A restored job
 * goes on where the snapshot was taken. The one event-time timer is Flink's own keyed state.
 */
public final class DetectFunction extends KeyedProcessFunction<Integer, Row, Row> implements CheckpointedFunction {
    private static final long serialVersionUID = 1L;

    private final String profilesJson;
    private final String configJson;
    private final long latenessSeconds;
    private final long maxGapDays;

    private transient Held held;
    private transient ListState<byte[]> snapshot;

    static final class Pending implements Serializable, Comparable<Pending> {
        private static final long serialVersionUID = 1L;
        final long stamp;
        final long arrival;
        final String line;

        Pending(long stamp, long arrival, String line) {
            this.stamp = stamp;
            this.arrival = arrival;
            this.line = line;
        }

        @Override
        public int compareTo(Pending o) {
            int c = Long.compare(stamp, o.stamp);
            return c != 0 ? c : Long.compare(arrival, o.arrival);
        }
    }

    static final class Held implements Serializable {
        private static final long serialVersionUID = 1L;
        Detection step;
        final PriorityQueue<Pending> pending = new PriorityQueue<>();
        long arrivals;
        Long timer; // the one event-time timer set (at the earliest pending record)
    }

    public DetectFunction(String profilesJson, String configJson, long latenessSeconds, long maxGapDays) {
        this.profilesJson = profilesJson;
        this.configJson = configJson;
        this.latenessSeconds = latenessSeconds;
        this.maxGapDays = maxGapDays;
    }

    @Override
    public void initializeState(FunctionInitializationContext context) throws Exception {
        snapshot = context.getOperatorStateStore().getListState(
                new ListStateDescriptor<>("detection", PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO));
        if (context.isRestored()) {
            for (byte[] bytes : snapshot.get()) held = read(bytes);
        }
    }

    @Override
    public void open(OpenContext context) throws Exception {
        Map<String, Detector.Profile> profiles = Detector.profiles(Records.JSON.readTree(profilesJson));
        Detector.Config config = Detector.Config.fromJson(Records.JSON.readTree(configJson));
        if (held == null) {
            held = new Held();
            held.step = new Detection(profiles, config, latenessSeconds, maxGapDays);
        } else {
            held.step.detector.attach(profiles, config); // a snapshot holds no profiles
        }
    }

    @Override
    public void snapshotState(FunctionSnapshotContext context) throws Exception {
        snapshot.update(List.of(write(held)));
    }

    @Override
    public void processElement(Row value, Context ctx, Collector<Row> out) {
        Long time = ctx.timestamp();
        long stamp = time == null ? 0 : time;
        held.arrivals += 1;
        held.pending.add(new Pending(stamp, held.arrivals, (String) value.getField(0)));
        // One timer at a time, at the earliest pending record.
        if (held.timer == null || stamp < held.timer) {
            ctx.timerService().registerEventTimeTimer(stamp);
            held.timer = stamp;
        }
    }

    @Override
    public void onTimer(long timestamp, OnTimerContext ctx, Collector<Row> out) {
        if (held.timer == null || timestamp != held.timer) return; // superseded by an earlier one
        // Event time has passed the watermark: everything up to it is complete.
        long passed = Math.max(timestamp, ctx.timerService().currentWatermark());
        while (!held.pending.isEmpty() && held.pending.peek().stamp <= passed) {
            for (Row row : held.step.process(held.pending.poll().line)) out.collect(row);
        }
        held.timer = null;
        if (!held.pending.isEmpty()) {
            held.timer = held.pending.peek().stamp;
            ctx.timerService().registerEventTimeTimer(held.timer);
        }
    }

    static byte[] write(Held held) throws IOException {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) {
            out.writeObject(held);
        }
        return bytes.toByteArray();
    }

    static Held read(byte[] bytes) throws IOException, ClassNotFoundException {
        try (ObjectInputStream in = new ObjectInputStream(new ByteArrayInputStream(bytes)) {
            @Override
            protected Class<?> resolveClass(java.io.ObjectStreamClass desc) throws IOException, ClassNotFoundException {
                // The job's classes come from the user class loader, not the one that loaded Java.
                return Class.forName(desc.getName(), false, DetectFunction.class.getClassLoader());
            }
        }) {
            return (Held) in.readObject();
        }
    }
}
