package dev.dfpharness.kinesis;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
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
    private static final long MAX_REQUEST_BYTES = 5L * 1024 * 1024; // PutRecords' limit

    private final KinesisOptions options;
    private final SerializationSchema<RowData> serializer;
    private final PartitionKeys keys;

    KinesisSink(KinesisOptions options, SerializationSchema<RowData> serializer,
                PartitionKeys keys) {
        this.options = options;
        this.serializer = serializer;
        this.keys = keys;
    }

    @Override
    public SinkWriter<RowData> createWriter(WriterInitContext context) throws IOException {
        try {
            serializer.open(context.asSerializationSchemaInitializationContext());
        } catch (Exception e) {
            throw new IOException("cannot open the record format", e);
        }
        keys.open(context.getTaskInfo().getIndexOfThisSubtask());
        return new Writer(context.getProcessingTimeService());
    }

    private final class Writer implements SinkWriter<RowData> {
        private final KinesisClient client = options.client();
        private final ProcessingTimeService time;
        private List<PutRecordsRequestEntry> buffer = new ArrayList<>();
        private long bufferedBytes;

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
            byte[] data = serializer.serialize(row);
            String key = keys.key(row);
            buffer.add(PutRecordsRequestEntry.builder()
                    .data(SdkBytes.fromByteArray(data)).partitionKey(key).build());
            bufferedBytes += data.length + key.length();
            if (buffer.size() >= options.maxBatch || bufferedBytes >= options.flushSizeBytes) {
                send();
            }
        }

        @Override
        public void flush(boolean endOfInput) throws IOException {
            send();
        }

        /** Everything buffered, in PutRecords requests within Kinesis's limits (500 records, 5 MiB). */
        private void send() throws IOException {
            List<PutRecordsRequestEntry> all = buffer;
            buffer = new ArrayList<>();
            bufferedBytes = 0;
            List<PutRecordsRequestEntry> request = new ArrayList<>();
            long requestBytes = 0;
            for (PutRecordsRequestEntry entry : all) {
                long size = entry.data().asByteArray().length + entry.partitionKey().length();
                if (!request.isEmpty() && (request.size() >= options.maxBatch
                        || requestBytes + size > MAX_REQUEST_BYTES)) {
                    put(request);
                    request = new ArrayList<>();
                    requestBytes = 0;
                }
                request.add(entry);
                requestBytes += size;
            }
            if (!request.isEmpty()) {
                put(request);
            }
        }

        /**
         * One PutRecords request; entries Kinesis refused (throttling, an internal error) are sent
         * again with backoff until accepted, as AWS's sink does, or fail the job at once with
         * {@code sink.fail-on-error}. Nothing is dropped.
         */
        private void put(List<PutRecordsRequestEntry> entries) throws IOException {
            List<PutRecordsRequestEntry> pending = new ArrayList<>(entries);
            for (int attempt = 1; !pending.isEmpty(); attempt++) {
                PutRecordsResponse response = client.putRecords(
                        b -> b.streamARN(options.streamArn).records(pendingCopy(pending)));
                List<PutRecordsRequestEntry> failed = new ArrayList<>();
                List<PutRecordsResultEntry> results = response.records();
                String firstError = null;
                for (int i = 0; i < results.size(); i++) {
                    if (results.get(i).errorCode() != null) {
                        failed.add(pending.get(i));
                        firstError = firstError == null ? results.get(i).errorCode() : firstError;
                    }
                }
                if (failed.isEmpty()) {
                    return;
                }
                String message = failed.size() + " records not accepted by " + options.streamArn
                        + " (" + firstError + ", attempt " + attempt + ")";
                if (options.failOnError) {
                    throw new IOException(message + "; sink.fail-on-error is set");
                }
                if (attempt == 1 || attempt % 20 == 0) {
                    LOG.warn("{}; sending them again", message);
                }
                pending.clear();
                pending.addAll(failed);
                try {
                    Thread.sleep(Math.min(2000L, 50L << Math.min(attempt, 6)));
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
