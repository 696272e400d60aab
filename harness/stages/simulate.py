"""Stage ``simulate``: the scenario's world, its truth and its streamed window as run files."""

from __future__ import annotations

import pyarrow.compute as pc
import pyarrow.parquet as pq

from emulation.dms import write_ndjson
from harness.run import RunContext, StageSpec, hops
from harness.simulation import SET_ASIDE_FILE, set_aside_reasons, simulate, write_set_aside
from simulator.world import SimulatedWorld


def run(ctx: RunContext) -> None:
    """Generate the scenario's world; keep its truth and its streamed window as run files."""
    sim = simulate(ctx.scenario)
    ctx.simulation = sim
    out = ctx.out.simulation
    ctx.out.truth.mkdir(parents=True, exist_ok=True)
    pq.write_table(sim.truth_daily, ctx.out.truth_daily, compression="zstd")
    pq.write_table(sim.truth_anomalies, ctx.out.truth_anomalies, compression="zstd")
    stream = sim.cdc_stream
    write_ndjson(stream["message"], out / "cdc" / "stream.ndjson")
    window_changes = sum(
        len(t.filter(pc.not_equal(t["_op"], "load"))) for t in sim.world.changes.values()
    )
    ctx.ledger.hop(hops.DMS_CDC).add(received=window_changes, written=len(stream))
    if len(sim.ecommerce):
        write_ndjson(sim.ecommerce["message"], out / "events" / "ecommerce.ndjson")
        ctx.ledger.hop(hops.SHOP_EVENTS).add(
            received=len(sim.ecommerce), written=len(sim.ecommerce)
        )
    ctx.summary["simulation"] = {
        "window": {
            "start": sim.world.window_start.isoformat(),
            "end": sim.world.window_end.isoformat(),
        },
        "full_load_records": len(sim.cdc_load),
        "stream_records": len(stream),
        "ecommerce_events": len(sim.ecommerce),
        "anomalies_injected": len(sim.truth_anomalies),
    }
    if sim.world.spec is None:
        ctx.summary["simulation"]["source"] = _replayed_rows(ctx, sim.world)


def _replayed_rows(ctx: RunContext, world: SimulatedWorld) -> dict:
    """A replay's sales rows → replayed, set aside (written with their reasons), filtered by
    design; counted in the ``source_rows`` hop and returned for the summary."""
    read, replayed = world.stats["source_rows"], len(world.sales)
    aside = write_set_aside(world, ctx.out.root)
    hop = ctx.ledger.hop(hops.SOURCE_ROWS)
    hop.add(received=read, written=replayed, consumed=read - aside - replayed)
    for reason, count in set_aside_reasons(world).items():
        hop.reject(reason, count)
    return {
        "origin": world.origin,
        "rows": read,
        "replayed": replayed,
        "set_aside": aside,
        # Rows that are no sale by design: quantity 0, items max_items left out.
        "filtered": {
            k.split(": ", 1)[1]: v for k, v in world.stats.items() if k.startswith("filtered: ")
        },
        **({"set_aside_file": SET_ASIDE_FILE} if aside else {}),
    }


STAGE = StageSpec("simulate", run, gives=("simulation",))
