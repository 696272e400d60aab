package dev.dfpharness.kinesis;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.apache.flink.api.common.operators.ProcessingTimeService;
import org.apache.flink.api.common.serialization.SerializationSchema;
import org.apache.flink.api.connector.sink2.Sink;
import org.apache.flink.api.connector.sink2.SinkWriter;
import org.apache.flink.api.connector.sink2.WriterInitContext;
import org.apache.flink.table.data.RowData;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import software.amazon.awssdk.core.SdkBytes;
import software.amazon.awssdk.services.kinesis.KinesisClient;
import software.amazon.awssdk.services.kinesis.model.PutRecordsRequestEntry;
import software.amazon.awssdk.services.kinesis.model.PutRecordsResponse;
import software.amazon.awssdk.services.kinesis.model.PutRecordsResultEntry;

/** Writes rows to a Kinesis stream with PutRecords (batched, failed entries retried). */
public final class KinesisSink implements Sink<RowData> {
    private static final long serialVersionUID = 1L;
    private static final Logger LOG = LoggerFactory.getLogger(KinesisSink.class);
    private static final int ATTEMPTS = 8;

    private final KinesisOptions options;
    private final SerializationSchema<RowData> serializer;

    KinesisSink(KinesisOptions options, SerializationSchema<RowData> serializer) {
        this.options = options;
        this.serializer = serializer;
    }

    @Override
    public SinkWriter<RowData> createWriter(WriterInitContext context) throws IOException {
        try {
            serializer.open(context.asSerializationSchemaInitializationContext());
        } catch (Exception e) {
            throw new IOException("cannot open the record format", e);
        }
        return new Writer(context.getProcessingTimeService());
    }

    private final class Writer implements SinkWriter<RowData> {
        private final KinesisClient client = options.client();
        private final ProcessingTimeService time;
        private List<PutRecordsRequestEntry> buffer = new ArrayList<>();

        Writer(ProcessingTimeService time) {
            this.time = time;
            schedule();
        }

        private void schedule() {
            time.registerTimer(time.getCurrentProcessingTime() + options.flushTimeoutMs, t -> {
                send();
                schedule();
            });
        }

        @Override
        public void write(RowData row, Context context) throws IOException {
            buffer.add(PutRecordsRequestEntry.builder()
                    .data(SdkBytes.fromByteArray(serializer.serialize(row)))
                    .partitionKey(UUID.randomUUID().toString())
                    .build());
            if (buffer.size() >= options.maxBatch) {
                send();
            }
        }

        @Override
        public void flush(boolean endOfInput) throws IOException {
            send();
        }

        private void send() throws IOException {
            List<PutRecordsRequestEntry> pending = buffer;
            buffer = new ArrayList<>();
            for (int attempt = 1; !pending.isEmpty(); attempt++) {
                PutRecordsResponse response = client.putRecords(
                        b -> b.streamARN(options.streamArn).records(pendingCopy(pending)));
                List<PutRecordsRequestEntry> failed = new ArrayList<>();
                List<PutRecordsResultEntry> results = response.records();
                for (int i = 0; i < results.size(); i++) {
                    if (results.get(i).errorCode() != null) {
                        failed.add(pending.get(i));
                    }
                }
                if (failed.isEmpty()) {
                    return;
                }
                if (attempt >= ATTEMPTS) {
                    String message = failed.size() + " records not accepted by "
                            + options.streamArn + " after " + attempt + " attempts";
                    if (options.failOnError) {
                        throw new IOException(message);
                    }
                    LOG.warn("{}; dropped", message);
                    return;
                }
                pending.clear();
                pending.addAll(failed);
                try {
                    Thread.sleep(Math.min(2000L, 50L << attempt));
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IOException("interrupted while retrying PutRecords", e);
                }
            }
        }

        private List<PutRecordsRequestEntry> pendingCopy(List<PutRecordsRequestEntry> entries) {
            return new ArrayList<>(entries);
        }

        @Override
        public void close() {
            client.close();
        }
    }
}
