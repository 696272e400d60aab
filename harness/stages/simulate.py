"""Stage ``simulate``: the scenario's world, its truth and its streamed window as run files."""

from __future__ import annotations

import pyarrow.compute as pc
import pyarrow.parquet as pq

from emulation.dms import write_ndjson
from harness.run import RunContext, StageSpec, hops
from harness.simulation import SET_ASIDE_FILE, set_aside_reasons, simulate, write_set_aside


def run(ctx: RunContext) -> None:
    """Generate the scenario's world; keep its truth and its streamed window as run files."""
    sim = simulate(ctx.scenario)
    ctx.simulation = sim
    out = ctx.out.simulation
    ctx.out.truth.mkdir(parents=True, exist_ok=True)
    pq.write_table(sim.truth_daily, ctx.out.truth_daily, compression="zstd")
    pq.write_table(sim.truth_anomalies, ctx.out.truth_anomalies, compression="zstd")
    world = sim.world
    if world.spec is None:  # a replay: the user's sales rows → replayed, set aside, filtered
        hop = ctx.ledger.hop(hops.SOURCE_ROWS)
        read = world.stats.get("source_rows", len(world.sales))
        aside = write_set_aside(world, ctx.out.root)
        hop.add(received=read, written=len(world.sales), consumed=read - aside - len(world.sales))
        for reason, count in set_aside_reasons(world).items():
            hop.reject(reason, count)
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
    if world.spec is None:
        ctx.summary["simulation"]["source"] = {
            "origin": world.origin,
            "rows": world.stats.get("source_rows"),
            "replayed": len(world.sales),
            "set_aside": world.stats.get("set_aside", 0),
            # Rows that are no sale by design: quantity 0, items max_items left out.
            "filtered": {
                k.split(": ", 1)[1]: v for k, v in world.stats.items() if k.startswith("filtered: ")
            },
            **({"set_aside_file": SET_ASIDE_FILE} if world.stats.get("set_aside") else {}),
        }


STAGE = StageSpec("simulate", run, gives=("simulation",))
