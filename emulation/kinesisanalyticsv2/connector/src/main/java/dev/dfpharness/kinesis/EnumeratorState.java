package dev.dfpharness.kinesis;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.Set;
import java.util.TreeSet;
import org.apache.flink.core.io.SimpleVersionedSerializer;

/** The shards already handed to readers (their progress lives in the readers' splits). */
public final class EnumeratorState {
    final Set<String> assigned;

    EnumeratorState(Set<String> assigned) {
        this.assigned = new TreeSet<>(assigned);
    }

    static final class Serializer implements SimpleVersionedSerializer<EnumeratorState> {
        @Override
        public int getVersion() {
            return 1;
        }

        @Override
        public byte[] serialize(EnumeratorState state) throws IOException {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            try (DataOutputStream out = new DataOutputStream(bytes)) {
                out.writeInt(state.assigned.size());
                for (String shard : state.assigned) {
                    out.writeUTF(shard);
                }
            }
            return bytes.toByteArray();
        }

        @Override
        public EnumeratorState deserialize(int version, byte[] serialized) throws IOException {
            try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(serialized))) {
                int n = in.readInt();
                Set<String> shards = new TreeSet<>();
                for (int i = 0; i < n; i++) {
                    shards.add(in.readUTF());
                }
                return new EnumeratorState(shards);
            }
        }
    }
}
