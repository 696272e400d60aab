package dev.dfpharness.anomaly;

import java.time.LocalDateTime;
import java.time.ZoneOffset;

import org.apache.flink.table.annotation.DataTypeHint;
import org.apache.flink.table.functions.ScalarFunction;

/**
 * A CDC record's event time, for the job's source table ({@code ts AS dfp_event_time(line)}):
 * DMS's commit time ({@code metadata.timestamp}) or the shop event's {@code sold_at}, read as the
 * reference reads it ({@code event_time} in {@code pipeline/anomaly/step.py}: any ISO-8601 form,
 * its offset honoured), in whole seconds, UTC. A record with neither, or not JSON, gets the epoch,
 * so it passes straight through to the error output.
 *
 * <p>A function rather than SQL's {@code JSON_VALUE}: the source's thread is the job's bottleneck,
 * and two {@code JSON_VALUE} calls cost two thirds of it (each parses the record and looks its
 * path up in a cache that cleans itself on every read).
 */
public final class EventTime extends ScalarFunction {
    private static final long serialVersionUID = 1L;
    private static final LocalDateTime EPOCH = LocalDateTime.ofEpochSecond(0, 0, ZoneOffset.UTC);

    public @DataTypeHint("TIMESTAMP(3) NOT NULL") LocalDateTime eval(String line) {
        Py.Moment when = line == null ? null : Records.eventTime(Records.tree(line));
        if (when == null) return EPOCH;
        // int(when.timestamp()): whole seconds, towards zero
        return LocalDateTime.ofEpochSecond(when.micros / 1_000_000L, 0, ZoneOffset.UTC);
    }
}
