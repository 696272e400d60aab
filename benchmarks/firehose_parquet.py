"""Benchmark: the Firehose emulation's JSON → Parquet conversion rate (records/s).

The scenario's full-load DMS messages (JSON) go through the ``cdc-staged`` delivery stream of the
stack, as the run's staging stage sends them: dynamic partitioning by table (known per batch, as
in bulk delivery) and by the record's day, buffering, conversion with the Glue table's schema,
and the objects written to the world's S3. Four timings side by side: the bulk intake
(``put_batch``, one arrival time, as the staging stage delivers the full load) and the record
intake (``put``, per-record arrival times, as records come off the stream), each with the partition
given and with the JQ query run over the records. Results go to benchmarks/results/.

    .venv/bin/python benchmarks/firehose_parquet.py [SCENARIO] [--records 500000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import pyarrow.compute as pc

from deploy.stack import load_stack
from emulation import World
from emulation.firehose import DeliveryStream, Record
from harness.provision import provision
from harness.run.aws import simulated_arrival
from harness.scenario import load_scenario
from harness.simulation import simulate
from pipeline.contracts.cdc import TABLES


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenario", nargs="?", default="standard")
    parser.add_argument("--records", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3, help="rounds; medians are reported")
    args = parser.parse_args()
    load_scenario(args.scenario)
    sim = simulate(args.scenario)
    load = sim.cdc_load
    batches = []
    left = args.records
    for table in TABLES:
        messages = load.filter(pc.equal(load["table"], table))["message"].to_pylist()[:left]
        batches.append((table, [m.encode() for m in messages]))
        left -= len(messages)
    total = sum(len(b) for _, b in batches)
    modes = ("bulk", "bulk_query", "per_record", "per_record_query")
    seconds_by_mode: dict[str, list[float]] = {mode: [] for mode in modes}
    results = {}
    with World(region=load_stack().local.region) as world:
        # Rounds interleave the modes, so a noisy moment does not favour one of them.
        for mode in [m for _ in range(args.repeat) for m in modes]:
            world.reset()
            names = provision(world, load_stack())
            stream = DeliveryStream(world, names.delivery_stream_name("cdc-staged"),
                                    arrival_time=simulated_arrival)  # fmt: skip
            began = time.perf_counter()
            for table, messages in batches:
                known = None if mode.endswith("_query") else (("table", table),)
                if mode.startswith("bulk"):
                    stream.put_batch(messages, sim.world.window_start, sequence_prefix=table,
                                     partition=known)  # fmt: skip
                else:
                    records = [Record(m, sim.world.window_start, f"{table}-{i:09d}")
                               for i, m in enumerate(messages)]  # fmt: skip
                    stream.put(records, partition=known)
            stream.drain()
            seconds_by_mode[mode].append(time.perf_counter() - began)
            median = statistics.median(seconds_by_mode[mode])
            results[mode] = {
                "seconds_median": round(median, 2),
                "seconds_each": [round(x, 2) for x in seconds_by_mode[mode]],
                "records_per_s": round(total / median),
                "objects": stream.stats.objects,
                "delivered": stream.stats.delivered,
            }
    report = {
        "benchmark": "firehose_parquet",
        "scenario": args.scenario,
        "records": total,
        "results": results,
        "machine": {"cpus": os.cpu_count()},
        "goal": {"records_per_s": 200_000},
    }
    out = os.path.join(
        os.path.dirname(__file__), "results", f"firehose_parquet-{args.scenario}.json"
    )
    with open(out, "w") as handle:
        handle.write(json.dumps(report, indent=2, sort_keys=True) + "\n")
    print(json.dumps(report, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
