package dev.dfpharness.kinesis;

/** One Kinesis record as read: its bytes, sequence number and arrival time. */
final class ShardRecord {
    final byte[] data;
    final String sequenceNumber;
    final long arrivalMillis;

    ShardRecord(byte[] data, String sequenceNumber, long arrivalMillis) {
        this.data = data;
        this.sequenceNumber = sequenceNumber;
        this.arrivalMillis = arrivalMillis;
    }
}
