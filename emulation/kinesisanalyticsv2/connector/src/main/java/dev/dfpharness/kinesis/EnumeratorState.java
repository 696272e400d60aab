package dev.dfpharness.kinesis;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.util.Set;
import java.util.TreeSet;
import org.apache.flink.core.io.SimpleVersionedSerializer;

/**
 * The shards already handed to readers (their progress lives in the readers' splits) and those
 * read to their end (closed by resharding), whose children may be handed out.
 */
public final class EnumeratorState {
    final Set<String> assigned;
    final Set<String> finished;

    EnumeratorState(Set<String> assigned, Set<String> finished) {
        this.assigned = new TreeSet<>(assigned);
        this.finished = new TreeSet<>(finished);
    }

    static final class Serializer implements SimpleVersionedSerializer<EnumeratorState> {
        @Override
        public int getVersion() {
            return 2;
        }

        @Override
        public byte[] serialize(EnumeratorState state) throws IOException {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            try (DataOutputStream out = new DataOutputStream(bytes)) {
                write(out, state.assigned);
                write(out, state.finished);
            }
            return bytes.toByteArray();
        }

        @Override
        public EnumeratorState deserialize(int version, byte[] serialized) throws IOException {
            try (DataInputStream in = new DataInputStream(new ByteArrayInputStream(serialized))) {
                Set<String> assigned = read(in);
                Set<String> finished = version >= 2 ? read(in) : Set.of();
                return new EnumeratorState(assigned, finished);
            }
        }

        private static void write(DataOutputStream out, Set<String> shards) throws IOException {
            out.writeInt(shards.size());
            for (String shard : shards) {
                out.writeUTF(shard);
            }
        }

        private static Set<String> read(DataInputStream in) throws IOException {
            int n = in.readInt();
            Set<String> shards = new TreeSet<>();
            for (int i = 0; i < n; i++) {
                shards.add(in.readUTF());
            }
            return shards;
        }
    }
}
