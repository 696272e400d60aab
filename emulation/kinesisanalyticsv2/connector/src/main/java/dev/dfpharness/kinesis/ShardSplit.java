package dev.dfpharness.kinesis;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import org.apache.flink.api.connector.source.SourceSplit;
import org.apache.flink.core.io.SimpleVersionedSerializer;

/** One shard of the stream, and where reading it starts. */
public final class ShardSplit implements SourceSplit {
    final String shardId;
    /** LATEST, TRIM_HORIZON, AT_TIMESTAMP or AFTER_SEQUENCE_NUMBER. */
    final String position;
    /** The sequence number (AFTER_SEQUENCE_NUMBER) or epoch millis (AT_TIMESTAMP). */
    final String marker;

    ShardSplit(String shardId, String position, String marker) {
        this.shardId = shardId;
        this.position = position;
        this.marker = marker;
    }

    @Override
    public String splitId() {
        return shardId;
    }

    @Override
    public String toString() {
        return "ShardSplit{" + shardId + " " + position + (marker == null ? "" : " " + marker) + "}";
    }

    static final class Serializer implements SimpleVersionedSerializer<ShardSplit> {
        @Override
        public int getVersion() {
            return 1;
        }

        @Override
        public byte[] serialize(ShardSplit split) throws IOException {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            try (DataOutputStream out = new DataOutputStream(bytes)) {
                out.writeUTF(split.shardId);
                out.writeUTF(split.position);
                out.writeBoolean(split.marker != null);
                if (split.marker != null) {
                    out.writeUTF(split.marker);
                }
            }
            return bytes.toByteArray();
        }

        @Override
        public ShardSplit deserialize(int version, byte[] serialized) throws IOException {
            try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(serialized))) {
                String shard = in.readUTF();
                String position = in.readUTF();
                String marker = in.readBoolean() ? in.readUTF() : null;
                return new ShardSplit(shard, position, marker);
            }
        }
    }
}
