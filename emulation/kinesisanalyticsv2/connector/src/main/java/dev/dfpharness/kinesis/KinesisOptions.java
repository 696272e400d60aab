package dev.dfpharness.kinesis;

import java.io.Serializable;
import java.net.URI;
import java.time.Duration;
import org.apache.flink.configuration.ConfigOption;
import org.apache.flink.configuration.ConfigOptions;
import org.apache.flink.configuration.ReadableConfig;
import software.amazon.awssdk.auth.credentials.DefaultCredentialsProvider;
import software.amazon.awssdk.http.urlconnection.UrlConnectionHttpClient;
import software.amazon.awssdk.regions.Region;
import software.amazon.awssdk.services.kinesis.KinesisClient;
import software.amazon.awssdk.services.kinesis.KinesisClientBuilder;

/**
 * The table options this connector reads, named as flink-connector-aws-kinesis-streams names
 * them, and the client they describe. Options of the real connector that have no local meaning
 * (credentials providers, EFO, retry tuning) are accepted and ignored.
 */
public final class KinesisOptions implements Serializable {
    private static final long serialVersionUID = 1L;

    public static final ConfigOption<String> STREAM_ARN =
            ConfigOptions.key("stream.arn").stringType().noDefaultValue()
                    .withDescription("ARN of the Kinesis data stream.");
    public static final ConfigOption<String> AWS_REGION =
            ConfigOptions.key("aws.region").stringType().noDefaultValue();
    public static final ConfigOption<String> AWS_ENDPOINT =
            ConfigOptions.key("aws.endpoint").stringType().noDefaultValue();
    public static final ConfigOption<String> INIT_POSITION =
            ConfigOptions.key("source.init.position").stringType().defaultValue("LATEST")
                    .withDescription("LATEST, TRIM_HORIZON or AT_TIMESTAMP.");
    public static final ConfigOption<String> INIT_TIMESTAMP =
            ConfigOptions.key("source.init.timestamp").stringType().noDefaultValue()
                    .withDescription("ISO-8601 instant or epoch seconds, for AT_TIMESTAMP.");
    public static final ConfigOption<Duration> DISCOVERY_INTERVAL =
            ConfigOptions.key("source.shard.discovery.interval").durationType()
                    .defaultValue(Duration.ofSeconds(10));
    public static final ConfigOption<Duration> IDLE_POLL_INTERVAL =
            ConfigOptions.key("source.shard.get-records.idle-source-interval").durationType()
                    .defaultValue(Duration.ofMillis(250))
                    .withDescription("The pause after a GetRecords that returned nothing.");
    public static final ConfigOption<Integer> GET_RECORDS_MAX =
            ConfigOptions.key("source.shard.get-records.max-record-count").intType()
                    .defaultValue(10_000)
                    .withDescription("The most records one GetRecords call asks for.");
    // The sink's options, named, typed and defaulted as AWS's table sink (Flink's async sink
    // options and the Kinesis builder's defaults): sizes in bytes, times in milliseconds.
    public static final ConfigOption<Integer> MAX_BATCH =
            ConfigOptions.key("sink.batch.max-size").intType().defaultValue(500)
                    .withDescription("Records per PutRecords request (Kinesis takes 500).");
    public static final ConfigOption<Integer> MAX_IN_FLIGHT =
            ConfigOptions.key("sink.requests.max-inflight").intType().defaultValue(50);
    public static final ConfigOption<Integer> MAX_BUFFERED =
            ConfigOptions.key("sink.requests.max-buffered").intType().defaultValue(10_000);
    public static final ConfigOption<Long> FLUSH_SIZE =
            ConfigOptions.key("sink.flush-buffer.size").longType().defaultValue(5L * 1024 * 1024)
                    .withDescription("Buffered bytes that make the writer send.");
    public static final ConfigOption<Long> FLUSH_TIMEOUT =
            ConfigOptions.key("sink.flush-buffer.timeout").longType().defaultValue(5_000L)
                    .withDescription("Milliseconds a record may wait in the buffer.");
    public static final ConfigOption<Boolean> FAIL_ON_ERROR =
            ConfigOptions.key("sink.fail-on-error").booleanType().defaultValue(false)
                    .withDescription("Fail the job on a record Kinesis refused, rather than "
                            + "send it again.");
    public static final ConfigOption<String> PARTITIONER =
            ConfigOptions.key("sink.partitioner").stringType().noDefaultValue();
    public static final ConfigOption<String> PARTITIONER_FIELD_DELIMITER =
            ConfigOptions.key("sink.partitioner-field-delimiter").stringType().defaultValue("|");

    final String streamArn;
    final String region;
    final String endpoint;
    final String initPosition;
    final String initTimestamp;
    final long discoveryIntervalMs;
    final long idlePollMs;
    final int getRecordsMax;
    final int maxBatch;
    final long flushSizeBytes;
    final long flushTimeoutMs;
    final boolean failOnError;
    final String partitioner;
    final String partitionDelimiter;

    KinesisOptions(ReadableConfig options) {
        this.streamArn = options.get(STREAM_ARN);
        this.region = options.get(AWS_REGION);
        this.endpoint = options.getOptional(AWS_ENDPOINT).orElse(null);
        this.initPosition = options.get(INIT_POSITION).toUpperCase();
        this.initTimestamp = options.getOptional(INIT_TIMESTAMP).orElse(null);
        this.discoveryIntervalMs = options.get(DISCOVERY_INTERVAL).toMillis();
        this.idlePollMs = options.get(IDLE_POLL_INTERVAL).toMillis();
        this.getRecordsMax = options.get(GET_RECORDS_MAX);
        if (getRecordsMax < 1 || getRecordsMax > 10_000) {
            throw new IllegalArgumentException("'source.shard.get-records.max-record-count' must "
                    + "be between 1 and 10000 (GetRecords' Limit), got " + getRecordsMax);
        }
        this.maxBatch = options.get(MAX_BATCH);
        if (maxBatch < 1 || maxBatch > 500) {
            throw new IllegalArgumentException("'sink.batch.max-size' must be between 1 and 500 "
                    + "(PutRecords' limit), got " + maxBatch);
        }
        // Flink's async sink (AWS's sink is one) refuses these at start; so does this one.
        int maxInFlight = options.get(MAX_IN_FLIGHT);
        if (maxInFlight < 1) {
            throw new IllegalArgumentException("'sink.requests.max-inflight' must be at least 1, "
                    + "got " + maxInFlight);
        }
        int maxBuffered = options.get(MAX_BUFFERED);
        if (maxBuffered <= maxBatch) {
            throw new IllegalArgumentException("'sink.requests.max-buffered' (" + maxBuffered
                    + ") must be greater than 'sink.batch.max-size' (" + maxBatch + "): the "
                    + "sink buffers more records than one request sends");
        }
        this.flushSizeBytes = options.get(FLUSH_SIZE);
        this.flushTimeoutMs = options.get(FLUSH_TIMEOUT);
        this.failOnError = options.get(FAIL_ON_ERROR);
        this.partitioner = options.getOptional(PARTITIONER).orElse(null);
        this.partitionDelimiter = options.get(PARTITIONER_FIELD_DELIMITER);
        if (streamArn == null || !streamArn.startsWith("arn:")) {
            throw new IllegalArgumentException("'stream.arn' must be a Kinesis stream ARN, got "
                    + streamArn);
        }
        if (!(initPosition.equals("LATEST") || initPosition.equals("TRIM_HORIZON")
                || initPosition.equals("AT_TIMESTAMP"))) {
            throw new IllegalArgumentException("'source.init.position' must be LATEST, "
                    + "TRIM_HORIZON or AT_TIMESTAMP, got " + initPosition);
        }
    }

    KinesisClient client() {
        KinesisClientBuilder builder = KinesisClient.builder()
                .httpClient(UrlConnectionHttpClient.create())
                .credentialsProvider(DefaultCredentialsProvider.builder().build());
        if (region != null) {
            builder.region(Region.of(region));
        }
        if (endpoint != null) {
            // Local emulators speak JSON, not the CBOR the SDK uses for Kinesis by default.
            if (endpoint.startsWith("http://")) {
                System.setProperty("aws.cborEnabled", "false");
            }
            builder.endpointOverride(URI.create(endpoint));
        }
        return builder.build();
    }
}
