"""A scenario's synthetic world with its DMS messages: the Python API and ``dfp simulate``.

``simulate("smoke")`` returns Arrow tables for notebooks; :func:`write_simulation` lays the same
out as files::

    DIR/world/{products,campaigns,sales}.parquet     the source tables at the end of the window
    DIR/cdc/load.ndjson                              DMS full-load messages (one per line)
    DIR/cdc/stream.ndjson                            DMS CDC messages of the window, commit order
    DIR/events/ecommerce.ndjson                      the web shop's own events (when enabled)
    DIR/truth/daily_demand.parquet                   true demand per product and day
    DIR/truth/anomalies.parquet, anomalies.json      every injected anomaly
    DIR/errors/source-rows.ndjson                    a replay's sales rows set aside, and why
    DIR/manifest.json                                scenario, seed, counts, sha256 per file

Same scenario and seed ⇒ byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from emulation.dms import dms_messages, write_ndjson
from harness.files import MARKER, OutputDirError, prepare_directory, sha256_file
from harness.scenario import Scenario, check_horizon, load_scenario
from pipeline.contracts.cdc import ECOMMERCE_EVENT_TYPE, ECOMMERCE_SCHEMA_VERSION
from simulator.source import SourceError, replay
from simulator.world import SimulatedWorld
from simulator.world import simulate as simulate_world

logger = logging.getLogger(__name__)


OutputDirectoryError = OutputDirError


@dataclass(frozen=True)
class Simulation:
    """A scenario's world as Arrow tables."""

    scenario: Scenario
    world: SimulatedWorld
    cdc: pa.Table  # partition_key, message, table, operation, seq, commit_us
    ecommerce: pa.Table  # partition_key, message, sale_id, sent_us

    @property
    def products(self) -> pa.Table:
        return self.world.products

    @property
    def campaigns(self) -> pa.Table:
        return self.world.campaigns

    @property
    def sales(self) -> pa.Table:
        return self.world.sales

    @property
    def truth_daily(self) -> pa.Table:
        return self.world.truth_daily

    @property
    def truth_anomalies(self) -> pa.Table:
        return self.world.truth_anomalies

    @property
    def cdc_load(self) -> pa.Table:
        return self.cdc.filter(pc.equal(self.cdc["operation"], "load"))

    @property
    def cdc_stream(self) -> pa.Table:
        return self.cdc.filter(pc.not_equal(self.cdc["operation"], "load"))


def ecommerce_messages(world: SimulatedWorld) -> pa.Table:
    """The shop's order-line events (shape in :mod:`pipeline.contracts.cdc`), keyed by product."""
    events = world.ecommerce_events
    if len(events) == 0:
        return pa.table(
            {"partition_key": pa.array([], pa.string()), "message": pa.array([], pa.string()),
             "sale_id": pa.array([], pa.int64()), "sent_us": pa.array([], pa.int64())}
        )  # fmt: skip
    rows = events.to_pylist()
    messages = [
        json.dumps(
            {
                "event_type": ECOMMERCE_EVENT_TYPE,
                "schema_version": ECOMMERCE_SCHEMA_VERSION,
                "event_id": f"{r['channel']}-{r['sale_id']:012d}",
                "sale_id": r["sale_id"],
                "product_id": r["product_id"],
                "quantity": r["quantity"],
                "unit_price": r["unit_price"],
                "channel": r["channel"],
                "sold_at": r["sold_at"].strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
            separators=(",", ":"),
        )
        for r in rows
    ]
    return pa.table(
        {
            "partition_key": events["product_id"],
            "message": pa.array(messages, pa.string()),
            "sale_id": events["sale_id"],
            "sent_us": events["_sent_us"],
        }
    )


def simulate(scenario: Scenario | str = "smoke", seed: int | None = None) -> Simulation:
    """Generate ``scenario`` (a name, a path or a :class:`Scenario`) as Arrow tables."""
    chosen = load_scenario(scenario) if isinstance(scenario, str) else scenario
    if seed is not None:
        chosen = chosen.with_seed(seed)
    if chosen.source is not None:
        world = replay(chosen.source, chosen.base_dir, chosen.seed)
        days = (world.window_start - world.start).days
        try:
            check_horizon(chosen.forecast, world.start.date(),
                          (world.window_end - dt.timedelta(days=1)).date())  # fmt: skip
        except ValueError as exc:
            raise SourceError(f"{world.origin}: {days} days of history: {exc}") from None
    else:
        world = simulate_world(chosen.world_spec())
    cdc = dms_messages(world.changes, chosen.dms, world.start)
    return Simulation(scenario=chosen, world=world, cdc=cdc, ecommerce=ecommerce_messages(world))


def _write_parquet(table: pa.Table, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd", write_statistics=True)


SET_ASIDE_FILE = "errors/source-rows.ndjson"  # under a run's or a simulation's folder


def write_set_aside(world: SimulatedWorld, folder: Path) -> int:
    """A replay's sales rows set aside (``source.bad_rows: set_aside``), one JSON record each
    (file, row, column, value, reason) in ``folder/errors/source-rows.ndjson``; returns how many.
    Nothing is written when none was."""
    table = world.set_aside
    if table is None or len(table) == 0:
        return 0
    path = folder / SET_ASIDE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in table.to_pylist()))
    return len(table)


def set_aside_reasons(world: SimulatedWorld) -> dict[str, int]:
    """How many rows were set aside per reason (the reason without the row's value)."""
    if world.set_aside is None:
        return {}
    return dict(sorted(Counter(world.set_aside["reason"].to_pylist()).items()))


def write_simulation(sim: Simulation, out_dir: Path, *, force: bool = False) -> dict[str, Any]:
    """Write ``sim`` under ``out_dir``; returns the manifest (also written as manifest.json)."""
    out_dir = Path(out_dir)
    prepare_directory(out_dir, force, kind="simulation")
    world = sim.world
    for name in ("products", "campaigns", "sales"):
        _write_parquet(getattr(world, name), out_dir / "world" / f"{name}.parquet")
    counts = {
        "cdc/load.ndjson": write_ndjson(sim.cdc_load["message"], out_dir / "cdc" / "load.ndjson"),
        "cdc/stream.ndjson": write_ndjson(
            sim.cdc_stream["message"], out_dir / "cdc" / "stream.ndjson"
        ),
    }
    if len(sim.ecommerce):
        counts["events/ecommerce.ndjson"] = write_ndjson(
            sim.ecommerce["message"], out_dir / "events" / "ecommerce.ndjson"
        )
    _write_parquet(world.truth_daily, out_dir / "truth" / "daily_demand.parquet")
    _write_parquet(world.truth_anomalies, out_dir / "truth" / "anomalies.parquet")
    anomalies = [
        {**row, "start": row["start"].isoformat(), "end": row["end"].isoformat()}
        for row in world.truth_anomalies.to_pylist()
    ]
    (out_dir / "truth" / "anomalies.json").write_text(json.dumps(anomalies, indent=2) + "\n")
    if write_set_aside(world, out_dir):
        counts[SET_ASIDE_FILE] = len(world.set_aside)
    operations = {
        f"{t}.{op}": n
        for (t, op), n in sorted(
            {
                (r["table"], r["operation"]): r["count"]
                for r in sim.cdc.group_by(["table", "operation"])
                .aggregate([("seq", "count")])
                .rename_columns(["table", "operation", "count"])
                .to_pylist()
            }.items()
        )
    }
    manifest = {
        "scenario": sim.scenario.name,
        "seed": sim.scenario.seed,
        "window": {
            "start": world.window_start.isoformat(),
            "end": world.window_end.isoformat(),
        },
        "records": {**counts, "world/sales.parquet": len(world.sales)},
        "cdc_operations": operations,
        "files": {
            p.relative_to(out_dir).as_posix(): sha256_file(p)
            for p in sorted(out_dir.rglob("*"))
            if p.is_file() and p.name != MARKER
        },
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest
