package dev.dfpharness.anomaly;

import java.io.File;
import java.util.ArrayList;
import java.util.List;

import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.node.ArrayNode;
import org.apache.flink.types.Row;

/**
 * The detection without Flink, for checking it against the reference and timing it:
 * {@code java -cp ... dev.dfpharness.anomaly.Replay INPUT OUTPUT} where INPUT is a JSON object
 * {@code {"profiles": {...}, "config": {...}, "lateness": s, "max_gap_days": n, "lines": [...]}}
 * (records in the order to process them) and OUTPUT receives the rows as a JSON array of arrays,
 * with {@code seconds} spent in the detection.
 */
public final class Replay {
    private Replay() {}

    public static void main(String[] args) throws Exception {
        JsonNode input = Records.JSON.readTree(new File(args[0]));
        List<String> lines = new ArrayList<>();
        for (JsonNode line : input.get("lines")) lines.add(line.textValue());
        List<Row> rows = new ArrayList<>();
        long began = 0;
        for (int round = 0; round < input.path("rounds").asInt(1); round++) { // the last is timed
            rows.clear();
            Detection step = new Detection(Detector.profiles(input.get("profiles")),
                    Detector.Config.fromJson(input.get("config")), input.path("lateness").asLong(600),
                    input.path("max_gap_days").asLong(7));
            began = System.nanoTime();
            for (String line : lines) rows.addAll(step.process(line));
        }
        double seconds = (System.nanoTime() - began) / 1e9;
        ArrayNode out = Records.JSON.createArrayNode();
        for (Row row : rows) {
            ArrayNode fields = out.addArray();
            for (int i = 0; i < row.getArity(); i++) fields.addPOJO(row.getField(i));
        }
        Records.JSON.writeValue(new File(args[1]),
                Records.JSON.createObjectNode().put("seconds", seconds).set("rows", out));
    }
}
