package dev.dfpharness.anomaly;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.types.Row;

import dev.dfpharness.anomaly.Records.CampaignChange;
import dev.dfpharness.anomaly.Records.ProductChange;
import dev.dfpharness.anomaly.Records.Rejected;
import dev.dfpharness.anomaly.Records.Sale;

/**
 * The job's step ({@code AnomalyDetection} in {@code pipeline/anomaly/step.py}): one record in,
 * output rows out, days closed on event time. Rows have the fields of {@code OutputRow}:
 * {@code kind, product_id, sale_id, quantity, unit_price, channel, sold_at, reason, score,
 * source, raw, outlier_id}.
 */
final class Detection implements Serializable {
    private static final long serialVersionUID = 1L;
    private static final org.slf4j.Logger LOG = org.slf4j.LoggerFactory.getLogger(Detection.class);

    static final String[] FIELDS = {"kind", "product_id", "sale_id", "quantity", "unit_price", "channel", "sold_at",
        "reason", "score", "source", "raw", "outlier_id"};

    final Detector detector;
    private final long latenessMicros;
    private final long maxGapDays;
    private Long openDay;
    private Long maxTime; // micros
    long skippedDays;

    Detection(Map<String, Detector.Profile> profiles, Detector.Config config, long latenessSeconds, long maxGapDays) {
        this.detector = new Detector(profiles, config);
        this.latenessMicros = latenessSeconds * 1_000_000L;
        this.maxGapDays = maxGapDays;
    }

    List<Row> process(String line) {
        List<Row> out = new ArrayList<>(1);
        JsonNode message = Records.tree(line);
        Object result = Records.parse(line, message);
        Sale sale = result instanceof Sale ? (Sale) result : null;
        if (result instanceof CampaignChange || result instanceof ProductChange) detector.learn(result);
        if (result instanceof Rejected) out.add(rejected(((Rejected) result).reason, line));
        Py.Moment when = sale != null ? sale.soldAt : Records.eventTime(message);
        if (when != null) advance(when, out);
        if (sale != null) {
            for (Detector.Outlier o : detector.process(sale)) out.add(outlier(o));
        }
        return out;
    }

    /** Close every day whose end (plus lateness) the event time has passed. */
    private void advance(Py.Moment when, List<Row> out) {
        if (maxTime == null || when.micros > maxTime) maxTime = when.micros;
        if (openDay == null) {
            openDay = when.day();
            return;
        }
        long edge = maxTime - latenessMicros;
        if (edge < Py.MIN_MICROS) return; // a stamp in year 1: nothing can close before it
        long closable = Math.floorDiv(edge, Py.MICROS_PER_DAY);
        // After a silence longer than maxGapDays (an outage, or a record stamped far in the
        // future) the silent days are not evaluated: no data is not a drop.
        if (closable - openDay > maxGapDays) {
            for (Detector.Outlier o : detector.endOfDay(openDay)) out.add(outlier(o));
            skippedDays += closable - openDay - 1;
            LOG.warn("event time jumped from {} to {}: {} silent days not evaluated for drops",
                    java.time.LocalDate.ofEpochDay(openDay), java.time.LocalDate.ofEpochDay(closable),
                    closable - openDay - 1);
            openDay = closable;
        }
        while (openDay < closable) {
            for (Detector.Outlier o : detector.endOfDay(openDay)) out.add(outlier(o));
            openDay += 1;
        }
    }

    static Row outlier(Detector.Outlier o) {
        Sale s = o.sale;
        return Row.of("outlier", o.productId, s == null ? null : s.saleId, s == null ? null : (int) s.quantity,
                s == null ? null : s.unitPrice, s == null ? null : s.channel, o.at.iso(), o.reason, o.score,
                s == null ? null : s.source, null, o.outlierId());
    }

    static Row rejected(String reason, String line) {
        return Row.of("rejected", null, null, null, null, null, null, reason, null, null, line, null);
    }
}
