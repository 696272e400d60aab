package dev.dfpharness.kinesis;

import java.io.Serializable;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.function.Function;
import org.apache.flink.table.api.ValidationException;
import org.apache.flink.table.data.RowData;
import org.apache.flink.table.types.logical.LogicalType;
import org.apache.flink.table.types.logical.LogicalTypeFamily;
import org.apache.flink.table.types.logical.RowType;

/**
 * The sink's partition key per row, chosen as AWS's {@code KinesisPartitionKeyGeneratorFactory}
 * chooses it, in decreasing precedence: a {@code PARTITIONED BY} table keys each record by its
 * partition columns' values joined with {@code sink.partitioner-field-delimiter}; without
 * {@code sink.partitioner}, or with {@code random}, a random key (records spread evenly over the
 * shards); {@code fixed}, the writer's subtask index (each subtask writes to one shard); any other
 * value is the class name of a user's generator, a serializable {@code Function<RowData, String>}
 * (AWS's {@code PartitionKeyGenerator} is one).
 */
abstract class PartitionKeys implements Serializable {
    private static final long serialVersionUID = 1L;
    /** Kinesis's longest partition key, in characters. */
    static final int MAX_LENGTH = 256;

    /** Called once per writer, before the first key. */
    void open(int subtask) {}

    abstract String key(RowData row);

    static PartitionKeys create(String partitioner, String delimiter, RowType physical,
                                List<String> partitionColumns, ClassLoader loader) {
        if (!partitionColumns.isEmpty()) {
            return new Fields(physical, partitionColumns, delimiter);
        }
        if (partitioner == null || partitioner.equals("random")) {
            return new Random();
        }
        if (partitioner.equals("fixed")) {
            return new Fixed();
        }
        return new Custom(partitioner, loader);
    }

    static final class Random extends PartitionKeys {
        private static final long serialVersionUID = 1L;

        @Override
        String key(RowData row) {
            return UUID.randomUUID().toString();
        }
    }

    static final class Fixed extends PartitionKeys {
        private static final long serialVersionUID = 1L;
        private String subtask = "0";

        @Override
        void open(int index) {
            subtask = String.valueOf(index);
        }

        @Override
        String key(RowData row) {
            return subtask;
        }
    }

    /** The partition columns' values, as strings, joined; static partitions fixed in advance. */
    static final class Fields extends PartitionKeys {
        private static final long serialVersionUID = 1L;
        private final List<String> names;
        private final List<RowData.FieldGetter> getters = new ArrayList<>();
        private final String delimiter;
        private final Map<String, String> fixed = new HashMap<>();

        Fields(RowType physical, List<String> names, String delimiter) {
            this.names = List.copyOf(names);
            this.delimiter = delimiter;
            for (String name : names) {
                int index = physical.getFieldNames().indexOf(name);
                if (index < 0) {
                    throw new ValidationException(String.format(
                            "Partition column '%s' is not a column of the table %s", name,
                            physical.getFieldNames()));
                }
                LogicalType type = physical.getTypeAt(index);
                if (!(type.is(LogicalTypeFamily.PREDEFINED) || type.is(LogicalTypeFamily.DATETIME))
                        || type.is(LogicalTypeFamily.BINARY_STRING)) {
                    throw new ValidationException(String.format(
                            "Partition column '%s' has type %s, which cannot make a Kinesis "
                                    + "partition key (use a character, numeric, boolean or "
                                    + "date-time column)", name, type));
                }
                getters.add(RowData.createFieldGetter(type, index));
            }
        }

        /** {@code INSERT INTO t PARTITION (col = 'v')}: that column's value is known. */
        void fix(Map<String, String> partition) {
            for (String name : partition.keySet()) {
                if (!names.contains(name)) {
                    throw new ValidationException(String.format(
                            "Static partition column '%s' is not a partition column of the "
                                    + "table %s", name, names));
                }
            }
            fixed.putAll(partition);
        }

        @Override
        String key(RowData row) {
            StringBuilder key = new StringBuilder();
            for (int i = 0; i < names.size(); i++) {
                if (i > 0) {
                    key.append(delimiter);
                }
                String value = fixed.get(names.get(i));
                if (value == null) {
                    Object field = getters.get(i).getFieldOrNull(row);
                    if (field == null) {
                        throw new IllegalArgumentException(String.format(
                                "Partition column '%s' is null: a Kinesis record needs a "
                                        + "partition key", names.get(i)));
                    }
                    value = field.toString();
                }
                key.append(value);
                if (key.length() >= MAX_LENGTH) {
                    break;
                }
            }
            return key.length() > MAX_LENGTH ? key.substring(0, MAX_LENGTH) : key.toString();
        }
    }

    /** A user's generator, loaded by class name when the job starts. */
    static final class Custom extends PartitionKeys {
        private static final long serialVersionUID = 1L;
        private final Function<RowData, String> generator;

        @SuppressWarnings("unchecked")
        Custom(String name, ClassLoader loader) {
            Class<?> type;
            try {
                type = Class.forName(name, true, loader);
            } catch (ClassNotFoundException | LinkageError e) {
                throw new ValidationException(String.format(
                        "Could not find and instantiate partitioner class '%s'", name), e);
            }
            if (!Function.class.isAssignableFrom(type)
                    || !Serializable.class.isAssignableFrom(type)) {
                throw new ValidationException(String.format(
                        "Partitioner class '%s' should have %s in its parents chain", name,
                        "org.apache.flink.connector.kinesis.sink.PartitionKeyGenerator "
                                + "(a serializable java.util.function.Function<RowData, String>)"));
            }
            try {
                generator = (Function<RowData, String>) type.getDeclaredConstructor().newInstance();
            } catch (ReflectiveOperationException e) {
                throw new ValidationException(String.format(
                        "Could not find and instantiate partitioner class '%s'", name), e);
            }
        }

        @Override
        String key(RowData row) {
            return generator.apply(row);
        }
    }
}
