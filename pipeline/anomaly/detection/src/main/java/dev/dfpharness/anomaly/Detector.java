package dev.dfpharness.anomaly;

import java.io.Serializable;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;

import dev.dfpharness.anomaly.Records.CampaignChange;
import dev.dfpharness.anomaly.Records.ProductChange;
import dev.dfpharness.anomaly.Records.Promotion;
import dev.dfpharness.anomaly.Records.Sale;

/**
 * The rules of {@code pipeline/anomaly/detector.py}'s {@code Detector}, one sale at a time with
 * per-product state: {@code spike}, {@code price_glitch}, {@code duplicate_burst} and, when a day
 * closes, {@code drop}. Same state, same order of operations, same arithmetic: the job's outliers
 * are the reference's. The profiles and thresholds are not part of its state (a snapshot holds
 * what the stream taught it; {@link #attach} gives them back after a restore).
 */
final class Detector implements Serializable {
    private static final long serialVersionUID = 1L;

    /** {@code DetectorConfig}: the thresholds, named like its fields. */
    static final class Config implements Serializable {
        private static final long serialVersionUID = 1L;
        double spikeFactor = 1.5;
        long minSpike = 10;
        double priceRatio = 3.0;
        long burstSeconds = 60;
        long burstMin = 4;
        double dropRatio = 0.2;
        double dropMinExpected = 4.0;
        double dropAlpha = 0.005;
        long dedupDays = 2;

        static Config fromJson(JsonNode doc) {
            Config c = new Config();
            if (doc == null) return c;
            c.spikeFactor = doc.path("spike_factor").asDouble(c.spikeFactor);
            c.minSpike = doc.path("min_spike").asLong(c.minSpike);
            c.priceRatio = doc.path("price_ratio").asDouble(c.priceRatio);
            c.burstSeconds = doc.path("burst_seconds").asLong(c.burstSeconds);
            c.burstMin = doc.path("burst_min").asLong(c.burstMin);
            c.dropRatio = doc.path("drop_ratio").asDouble(c.dropRatio);
            c.dropMinExpected = doc.path("drop_min_expected").asDouble(c.dropMinExpected);
            c.dropAlpha = doc.path("drop_alpha").asDouble(c.dropAlpha);
            c.dedupDays = doc.path("dedup_days").asLong(c.dedupDays);
            return c;
        }
    }

    /** A product's reference from history ({@code Profile}). */
    static final class Profile implements Serializable {
        private static final long serialVersionUID = 1L;
        final double lineQtyP99;
        final double priceReference;
        final double[] unitsByWeekday; // Monday … Sunday
        final double dispersion;
        final String category;
        final List<Promotion> promotions;
        final Double listPrice;

        Profile(double lineQtyP99, double priceReference, double[] unitsByWeekday, double dispersion, String category,
                List<Promotion> promotions, Double listPrice) {
            this.lineQtyP99 = lineQtyP99;
            this.priceReference = priceReference;
            this.unitsByWeekday = unitsByWeekday;
            this.dispersion = dispersion;
            this.category = category;
            this.promotions = promotions;
            this.listPrice = listPrice;
        }
    }

    /** {@code profiles_from_document}: the JSON document the batch side writes, in its order. */
    static Map<String, Profile> profiles(JsonNode doc) throws Py.BadValue {
        Map<String, Profile> out = new LinkedHashMap<>();
        Iterator<Map.Entry<String, JsonNode>> it = doc.fields();
        while (it.hasNext()) {
            Map.Entry<String, JsonNode> e = it.next();
            JsonNode p = e.getValue();
            double[] weekdays = new double[7];
            for (int i = 0; i < 7; i++) weekdays[i] = p.get("units_by_weekday").get(i).asDouble();
            List<Promotion> promotions = new ArrayList<>();
            for (JsonNode q : p.path("promotions")) {
                promotions.add(new Promotion(Py.str(q.get(0)), Py.date(q.get(1).asText()), Py.date(q.get(2).asText()),
                        q.get(3).asDouble(), Py.str(q.get(4))));
            }
            JsonNode category = p.get("category");
            JsonNode listPrice = p.get("list_price");
            out.put(e.getKey(), new Profile(p.get("line_qty_p99").asDouble(), p.get("price_reference").asDouble(),
                    weekdays, p.has("dispersion") ? p.get("dispersion").asDouble() : 1e6,
                    category != null && category.isTextual() ? category.textValue() : null, promotions,
                    listPrice != null && listPrice.isNumber() ? Records.positive(listPrice.asDouble()) : null));
        }
        return out;
    }

    /** An outlier: a line ({@code sale} set) or a product's day ({@code drop}). */
    static final class Outlier {
        final String productId;
        final String reason;
        final double score;
        final Py.Moment at;
        final Sale sale;

        Outlier(String productId, String reason, double score, Py.Moment at, Sale sale) {
            this.productId = productId;
            this.reason = reason;
            this.score = score;
            this.at = at;
            this.sale = sale;
        }

        String outlierId() {
            if (sale == null) return reason + ":" + productId + ":" + java.time.LocalDate.ofEpochDay(at.day());
            return reason + ":" + sale.saleId;
        }
    }

    private static final class Line implements Serializable {
        private static final long serialVersionUID = 1L;
        final long quantity;
        final double rounded; // round(unit_price, 2)
        final String channel;
        final Sale sale;

        Line(Sale sale) {
            this.quantity = sale.quantity;
            this.rounded = Py.round2(sale.unitPrice);
            this.channel = sale.channel;
            this.sale = sale;
        }

        boolean sameAs(Line other) {
            return quantity == other.quantity && rounded == other.rounded && channel.equals(other.channel);
        }
    }

    private static final class ProductState implements Serializable {
        private static final long serialVersionUID = 1L;
        final ArrayDeque<Line> recent = new ArrayDeque<>(); // arrival order
        final HashSet<Long> burstReported = new HashSet<>(); // sale ids of lines now in recent
        final HashMap<Long, Long> unitsByDay = new HashMap<>(); // open days only
    }

    private transient Map<String, Profile> profiles;
    private transient Config config;
    private transient Set<String> profileCampaigns; // campaign ids the profiles hold

    private final HashMap<String, ProductState> state = new HashMap<>();
    private final HashMap<Long, HashSet<Long>> seen = new HashMap<>(); // sale ids by their day
    private Long closed; // the last day endOfDay evaluated
    private final HashMap<String, CampaignChange> campaigns = new HashMap<>();
    private final HashMap<String, String> categories = new HashMap<>();
    private final HashMap<String, Double> listPrices = new HashMap<>();

    Detector(Map<String, Profile> profiles, Config config) {
        attach(profiles, config);
    }

    void attach(Map<String, Profile> profiles, Config config) {
        this.profiles = profiles;
        this.config = config;
        this.profileCampaigns = new HashSet<>();
        for (Profile p : profiles.values()) {
            for (Promotion q : p.promotions) profileCampaigns.add(q.campaignId);
        }
    }

    void learn(Object change) {
        if (change instanceof ProductChange) {
            ProductChange p = (ProductChange) change;
            categories.put(p.productId, p.category);
            if (p.listPrice != null) listPrices.put(p.productId, p.listPrice);
            return;
        }
        CampaignChange c = (CampaignChange) change;
        if (c.promotion == null && !profileCampaigns.contains(c.campaignId)) {
            campaigns.remove(c.campaignId); // nothing else knows of it
        } else { // a deletion of a campaign the profiles hold stays, so that it stays deleted
            campaigns.put(c.campaignId, c);
        }
    }

    private boolean off(double ratio) {
        return ratio >= config.priceRatio || ratio <= 1 / config.priceRatio;
    }

    private boolean explainedByACampaign(Sale sale, Profile profile, double reference) {
        long day = sale.soldAt.day();
        String category = categories.containsKey(sale.productId) ? categories.get(sale.productId) : profile.category;
        Map<String, Promotion> running = new HashMap<>();
        for (Promotion q : profile.promotions) running.put(q.campaignId, q);
        for (CampaignChange change : campaigns.values()) {
            running.remove(change.campaignId);
            boolean reaches = change.scope.equals("product") ? change.target.equals(sale.productId)
                    : change.target.equals(category);
            if (reaches && change.promotion != null) running.put(change.campaignId, change.promotion);
        }
        for (Promotion q : running.values()) {
            if (q.applies(day, sale.channel) && !off(sale.unitPrice / (reference * (1 - q.discount)))) return true;
        }
        return false;
    }

    List<Outlier> process(Sale sale) {
        List<Outlier> out = new ArrayList<>(0);
        long day = sale.soldAt.day();
        for (HashSet<Long> ids : seen.values()) {
            if (ids.contains(sale.saleId)) return out; // the same sale via DMS and the shop, or again
        }
        seen.computeIfAbsent(day, d -> new HashSet<>()).add(sale.saleId);
        ProductState s = state.computeIfAbsent(sale.productId, p -> new ProductState());
        if (closed == null || day > closed) s.unitsByDay.merge(day, sale.quantity, Long::sum);
        Profile profile = profiles.get(sale.productId);
        double threshold = Math.max((double) config.minSpike, config.spikeFactor * (profile != null ? profile.lineQtyP99 : 1));
        if (sale.quantity >= threshold) out.add(new Outlier(sale.productId, "spike", sale.quantity / threshold, sale.soldAt, sale));
        if (profile != null && profile.priceReference > 0) {
            double ratio = sale.unitPrice / profile.priceReference;
            Double listed = listPrices.containsKey(sale.productId) ? listPrices.get(sale.productId) : profile.listPrice;
            if (off(ratio) && (listed == null || off(sale.unitPrice / listed))
                    && !explainedByACampaign(sale, profile, listed != null && listed != 0 ? listed : profile.priceReference)) {
                out.add(new Outlier(sale.productId, "price_glitch", Math.max(ratio, 1 / ratio), sale.soldAt, sale));
            }
        }
        // Duplicate bursts: identical lines close together.
        Line line = new Line(sale);
        long window = config.burstSeconds * 1_000_000L;
        long horizon = sale.soldAt.micros - window;
        while (!s.recent.isEmpty() && s.recent.peekFirst().sale.soldAt.micros < horizon) {
            s.burstReported.remove(s.recent.pollFirst().sale.saleId); // it can never be in a burst again
        }
        s.recent.addLast(line);
        List<Line> same = new ArrayList<>();
        for (Line other : s.recent) {
            if (other.sameAs(line) && Math.abs(other.sale.soldAt.micros - sale.soldAt.micros) <= window) same.add(other);
        }
        if (same.size() >= config.burstMin) {
            for (Line other : same) {
                if (s.burstReported.add(other.sale.saleId)) {
                    out.add(new Outlier(other.sale.productId, "duplicate_burst", same.size(), other.sale.soldAt, other.sale));
                }
            }
        }
        return out;
    }

    /** Drops on {@code day} (days since the epoch); then it and the days before it are closed. */
    List<Outlier> endOfDay(long day) {
        List<Outlier> out = new ArrayList<>(0);
        int weekday = (int) Math.floorMod(day + 3, 7L); // 1970-01-01 was a Thursday
        for (Map.Entry<String, Profile> e : profiles.entrySet()) {
            Profile profile = e.getValue();
            double expected = profile.unitsByWeekday[weekday];
            if (expected < config.dropMinExpected) continue;
            ProductState s = state.get(e.getKey());
            long sold = s == null ? 0 : s.unitsByDay.getOrDefault(day, 0L);
            if (sold < config.dropRatio * expected && nbCdf(sold, expected, profile.dispersion) < config.dropAlpha) {
                out.add(new Outlier(e.getKey(), "drop", 1 - sold / expected, new Py.Moment(day * Py.MICROS_PER_DAY, 0), null));
            }
        }
        forget(day);
        return out;
    }

    /** P(X <= k) for a negative binomial with this mean and dispersion r (Poisson for huge r). */
    static double nbCdf(long k, double mean, double r) {
        double p = r / (r + mean);
        boolean poisson = !(r < 1e5);
        double term = poisson ? Math.exp(-mean) : Math.pow(p, r);
        double ratio = 1 - p;
        double total = 0.0;
        for (long i = 0; i < k + 1; i++) {
            total += term;
            term *= poisson ? mean / (i + 1) : (i + r) / (i + 1) * ratio;
        }
        return total;
    }

    private void forget(long day) {
        closed = closed == null ? day : Math.max(closed, day);
        Iterator<Map.Entry<String, ProductState>> products = state.entrySet().iterator();
        while (products.hasNext()) {
            ProductState s = products.next().getValue();
            s.unitsByDay.keySet().removeIf(d -> d <= closed);
            if (s.unitsByDay.isEmpty() && s.recent.isEmpty()) products.remove();
        }
        long oldest = closed - config.dedupDays;
        seen.keySet().removeIf(d -> d <= oldest);
        // A campaign over before the oldest day a sale can still arrive for explains nothing.
        campaigns.values().removeIf(c -> c.promotion != null && c.promotion.end <= oldest);
    }
}
