"""Benchmark: event-to-outlier latency of the anomaly job in the local world (p50, p95).

The job runs as ``dfp run`` runs it (local Managed Flink, the stack's properties, reading from
the latest position); once it answers, each sample puts one spike sale stamped "now" on the CDC
stream, followed by a DMS heartbeat every 200 ms (event time must pass the sale on every shard
before the job releases it), and measures until the outlier is on the outlier stream. Results go
to benchmarks/results/.

    .venv/bin/python benchmarks/anomaly_latency.py [--samples 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import tempfile
import time
from pathlib import Path

from _results import save

from deploy.stack import load_stack
from emulation import World
from emulation.kinesis import read_stream, stream_positions
from emulation.kinesisanalyticsv2 import connector_jar, detection_jar
from emulation.kinesisanalyticsv2.application import (
    ApplicationSpec,
    LocalApplication,
    with_endpoint,
)
from harness.provision import provision
from harness.stages.anomaly import HEARTBEAT_TABLE, heartbeats

REPO = Path(__file__).resolve().parent.parent
PROFILE = {"P1": {"line_qty_p99": 3.0, "price_reference": 10.0,
                  "units_by_weekday": [1.0] * 7, "dispersion": 1e6}}  # fmt: skip


def spike(sale_id: int) -> bytes:
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    row = {"sale_id": sale_id, "product_id": "P1", "quantity": 50, "unit_price": 10.0,
           "channel": "web", "sold_at": stamp}  # fmt: skip
    meta = {
        "timestamp": stamp,
        "record-type": "data",
        "operation": "insert",
        "partition-key-type": "primary-key",
        "schema-name": "retail",
        "table-name": "sales",
    }
    return json.dumps({"data": row, "metadata": meta}).encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    stack = load_stack()
    latencies = []
    with World(region=stack.local.region) as world, tempfile.TemporaryDirectory() as tmp:
        names = provision(world, stack)
        groups = with_endpoint(names.application_properties("anomaly", local=False),
                               world.endpoint_url)  # fmt: skip
        detection = {g["PropertyGroupId"]: g["PropertyMap"] for g in groups}["detector.config.0"]
        bucket, _, key = detection["profiles.uri"][5:].partition("/")
        world.client("s3").put_object(Bucket=bucket, Key=key, Body=json.dumps(PROFILE).encode())
        app = stack.applications["anomaly"]
        spec = ApplicationSpec(name="anomaly", entry=app.entry_path(), property_groups=groups,
                               jar=connector_jar(), parallelism=app.parallelism,
                               python_path=[REPO], libraries=[detection_jar()])  # fmt: skip
        kinesis = world.client("kinesis")
        cdc, out = names.stream_name("cdc"), names.stream_name("outliers")
        with LocalApplication(spec, Path(tmp) / "flink", world.environment()) as job:
            sale_id = 1000
            for sample in range(-1, args.samples):  # sample -1 waits for the job to be up
                start = stream_positions(kinesis, out)
                sent = time.monotonic()
                sale_id += 1
                kinesis.put_record(StreamName=cdc, Data=spike(sale_id), PartitionKey="s")
                resent = sent
                while True:
                    job.check()
                    if sample < 0 and time.monotonic() - resent > 5:  # read from LATEST: the
                        sale_id += 1  # first spikes may predate the reader's first position
                        kinesis.put_record(StreamName=cdc, Data=spike(sale_id), PartitionKey="s")
                        resent = time.monotonic()
                    for beat in heartbeats("retail", dt.datetime.now(dt.UTC), count=1):
                        kinesis.put_record(StreamName=cdc, Data=beat, PartitionKey=HEARTBEAT_TABLE)
                    if read_stream(kinesis, out, after=start):
                        break
                    if time.monotonic() - sent > 300:
                        raise SystemExit(f"no outlier after 300 s:\n{job.log_tail()}")
                    time.sleep(0.2)
                if sample >= 0:
                    latencies.append(time.monotonic() - sent)
    ordered = sorted(latencies)
    report = {
        "benchmark": "anomaly_latency",
        "samples": len(latencies),
        "p50_s": round(statistics.median(ordered), 3),
        "p95_s": round(ordered[max(0, round(0.95 * len(ordered)) - 1)], 3),
        "max_s": round(ordered[-1], 3),
    }
    save("anomaly_latency", report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
