package dev.dfpharness.anomaly;

import java.io.Serializable;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.core.json.JsonReadFeature;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.DeserializationFeature;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.json.JsonMapper;

/**
 * The records the job reads, as {@code parse} in {@code pipeline/anomaly/detector.py} reads them:
 * DMS's message for a {@code sales} insert, the web shop's {@code order_line} event, and the
 * {@code campaigns} and {@code products} changes the price rule learns from. Everything else is
 * ignored; a record that cannot be read is rejected with the reference's reason.
 */
final class Records {
    private Records() {}

    // JSON as Python's json module reads it: NaN and Infinity accepted, nothing after the value.
    static final ObjectMapper JSON = JsonMapper.builder()
            .enable(JsonReadFeature.ALLOW_NON_NUMERIC_NUMBERS)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    static final String SHOP_EVENT_TYPE = "order_line"; // pipeline.contracts.cdc.ECOMMERCE_EVENT_TYPE
    static final long SHOP_SCHEMA_VERSION = 1; // ECOMMERCE_SCHEMA_VERSIONS

    static final class Sale implements Serializable {
        private static final long serialVersionUID = 1L;
        final long saleId;
        final String productId;
        final long quantity;
        final double unitPrice;
        final String channel;
        final Py.Moment soldAt;
        final String source;

        Sale(long saleId, String productId, long quantity, double unitPrice, String channel, Py.Moment soldAt,
             String source) {
            this.saleId = saleId;
            this.productId = productId;
            this.quantity = quantity;
            this.unitPrice = unitPrice;
            this.channel = channel;
            this.soldAt = soldAt;
            this.source = source;
        }
    }

    static final class Rejected {
        final String reason;

        Rejected(String reason) {
            this.reason = reason;
        }
    }

    /** A campaign's price effect on one product, days as days since the epoch, inclusive. */
    static final class Promotion implements Serializable {
        private static final long serialVersionUID = 1L;
        final String campaignId;
        final long start;
        final long end;
        final double discount;
        final String channel;

        Promotion(String campaignId, long start, long end, double discount, String channel) {
            this.campaignId = campaignId;
            this.start = start;
            this.end = end;
            this.discount = discount;
            this.channel = channel;
        }

        boolean applies(long day, String on) {
            return start <= day && day <= end && (channel.equals("all") || channel.equals(on));
        }
    }

    /** A campaigns row, or its deletion ({@code promotion} null). */
    static final class CampaignChange implements Serializable {
        private static final long serialVersionUID = 1L;
        final String campaignId;
        final String scope;
        final String target;
        final Promotion promotion;

        CampaignChange(String campaignId, String scope, String target, Promotion promotion) {
            this.campaignId = campaignId;
            this.scope = scope;
            this.target = target;
            this.promotion = promotion;
        }
    }

    static final class ProductChange {
        final String productId;
        final String category;
        final Double listPrice;

        ProductChange(String productId, String category, Double listPrice) {
            this.productId = productId;
            this.category = category;
            this.listPrice = listPrice;
        }
    }

    /** The record's JSON, or null when it is not JSON. */
    static JsonNode tree(String line) {
        try {
            JsonNode tree = JSON.readTree(line);
            return tree == null || tree.isMissingNode() ? null : tree; // "" reads as missing
        } catch (Exception e) {
            return null;
        }
    }

    static String jsonError(String line) {
        try {
            JSON.readTree(line);
            return "Expecting value: no JSON value in the record";
        } catch (Exception e) {
            String message = String.valueOf(e.getMessage());
            int end = message.indexOf('\n');
            return end < 0 ? message : message.substring(0, end);
        }
    }

    /**
     * A {@link Sale}, a {@link Rejected}, a {@link CampaignChange} or {@link ProductChange}, or
     * null for a record that is none of these. {@code message} is the record's JSON (null when
     * it is not JSON).
     */
    static Object parse(String line, JsonNode message) {
        if (message == null) return new Rejected("malformed JSON: " + jsonError(line));
        if (!message.isObject()) return new Rejected("record is not a JSON object");
        JsonNode row;
        String source;
        if (message.has("metadata")) {
            JsonNode meta = message.get("metadata");
            if (!Py.truthy(meta)) return null; // {} has no record-type
            if (!meta.isObject()) return new Rejected("metadata is not a JSON object");
            if (!text(meta, "record-type").equals("data")) return null;
            String table = text(meta, "table-name");
            if (table.equals("campaigns") || table.equals("products")) return referenceChange(meta, message.get("data"));
            if (!table.equals("sales")) return null;
            String operation = text(meta, "operation");
            if (!operation.equals("insert") && !operation.equals("load")) return null;
            JsonNode data = message.get("data");
            row = Py.truthy(data) ? data : JSON.createObjectNode();
            source = "dms";
        } else if (text(message, "event_type").equals(SHOP_EVENT_TYPE)) {
            JsonNode version = message.get("schema_version");
            boolean known = version != null && version.isNumber() && !version.isBoolean()
                    && version.doubleValue() == SHOP_SCHEMA_VERSION;
            if (!known) return new Rejected("unknown shop event schema_version " + Py.repr(version, 40));
            row = message;
            source = "shop";
        } else if (message.has("event_type")) {
            return null;
        } else {
            return new Rejected("neither a DMS message nor a shop event");
        }
        Sale sale;
        try {
            long saleId = Py.integer(Py.item(row, "sale_id"), "sale_id", 64);
            String productId = Py.str(Py.item(row, "product_id"));
            long quantity = Py.integer(Py.item(row, "quantity"), "quantity", 32);
            double unitPrice = Py.number(Py.item(row, "unit_price"), "unit_price");
            String channel = Py.str(Py.item(row, "channel"));
            sale = new Sale(saleId, productId, quantity, unitPrice, channel, timestamp(Py.item(row, "sold_at")), source);
        } catch (Py.MissingField e) {
            return new Rejected("missing field " + e.field);
        } catch (Py.BadValue e) {
            return new Rejected("bad value: " + Py.cut(e.getMessage(), 200));
        }
        if (!Double.isFinite(sale.unitPrice)) {
            return new Rejected("unit_price " + Py.floatRepr(sale.unitPrice) + " is not a finite number");
        }
        if (sale.quantity <= 0) return new Rejected("quantity " + sale.quantity + " is not positive");
        if (sale.unitPrice <= 0) return new Rejected("unit_price " + Py.floatRepr(sale.unitPrice) + " is not positive");
        return sale;
    }

    /** {@code obj.get(name)} compared as Python compares it with a string: text or nothing. */
    private static String text(JsonNode obj, String name) {
        JsonNode v = obj.get(name);
        return v != null && v.isTextual() ? v.textValue() : "\0";
    }

    private static Py.Moment timestamp(JsonNode v) throws Py.BadValue {
        if (!v.isTextual()) throw new Py.BadValue("sold_at " + Py.repr(v, 40) + " is not a timestamp string");
        return Py.isoformat(v.textValue());
    }

    /** A campaign or product change the price rule reads; null for one it cannot read. */
    private static Object referenceChange(JsonNode meta, JsonNode row) {
        if (row == null || !row.isObject()) return null;
        boolean deleted = text(meta, "operation").equals("delete");
        try {
            if (text(meta, "table-name").equals("products")) {
                if (deleted) return null;
                JsonNode price = row.get("list_price");
                Double listPrice = null;
                if (price != null && !price.isNull()) listPrice = positive(Py.number(price, "list_price"));
                return new ProductChange(Py.str(Py.item(row, "product_id")), Py.str(Py.item(row, "category")), listPrice);
            }
            if (deleted) return new CampaignChange(Py.str(Py.item(row, "campaign_id")), "", "", null);
            String scope = Py.str(Py.item(row, "scope"));
            JsonNode target = scope.equals("product") ? Py.item(row, "product_id") : Py.item(row, "category");
            String campaignId = Py.str(Py.item(row, "campaign_id"));
            long start = Py.date(Py.str(Py.item(row, "start_date")));
            long end = Py.date(Py.str(Py.item(row, "end_date")));
            double discount = Py.number(Py.item(row, "discount"), "discount");
            JsonNode channel = row.get("channel");
            Promotion promotion = new Promotion(campaignId, start, end, discount,
                    Py.truthy(channel) ? Py.str(channel) : "all");
            if (!(0 < discount && discount < 1)) return null;
            return new CampaignChange(campaignId, scope, Py.str(target), promotion);
        } catch (Py.BadValue | Py.MissingField e) {
            return null;
        }
    }

    static Double positive(double price) {
        return Double.isFinite(price) && price > 0 ? price : null;
    }

    /**
     * {@code event_time} of a record that is not a sale: the DMS commit time or the event's
     * {@code sold_at}; null when it has neither or it cannot be read.
     */
    static Py.Moment eventTime(JsonNode message) {
        if (message == null || !message.isObject()) return null;
        JsonNode meta = message.get("metadata");
        if (Py.truthy(meta) && !meta.isObject()) return null; // "x".get(...) fails
        JsonNode stamp = Py.truthy(meta) ? meta.get("timestamp") : null;
        if (!Py.truthy(stamp)) stamp = message.get("sold_at");
        if (!Py.truthy(stamp)) return null;
        try {
            return Py.isoformat(Py.str(stamp));
        } catch (Py.BadValue e) {
            return null;
        }
    }
}
