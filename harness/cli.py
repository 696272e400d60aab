"""The ``dfp`` command line.

Exit codes: 0 the run succeeded and met its expectations; 1 a stage failed or an expectation was
not met (the summary says which); 2 the input was refused (scenario, output directory, endpoint).
"""

from __future__ import annotations

import json
import logging
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from deploy.outputs import OutputDirError, prepare_output_dir
from emulation.safety import UnsafeEndpointError, check_endpoint, is_local_host
from harness.scenario import DEFAULT_SCENARIO, ScenarioError, list_scenarios, load_scenario

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="dfp-harness: run the Demand Forecasting & Planning pipeline in a local AWS world.",
)
console = Console(stderr=True)


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=console, show_path=False)],
    )
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


def _sigterm_to_exit() -> None:
    """Turn SIGTERM into SystemExit so the world is torn down as on Ctrl-C."""

    def handler(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def _refuse(message: str) -> NoReturn:
    """Exit 2 with ``message`` shown as plain text: values from files and arguments may hold
    brackets, which must never be read as console markup."""
    console.print(Text.assemble(("error: ", "bold red"), message), soft_wrap=True)
    raise typer.Exit(2)


@app.command()
def run(
    scenario: Annotated[
        str, typer.Argument(help="scenario name (in scenarios/) or path to a YAML file")
    ] = DEFAULT_SCENARIO,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="run directory")] = None,
    seed: Annotated[int | None, typer.Option(help="override the scenario's seed")] = None,
    force: Annotated[bool, typer.Option(help="replace a non-empty run directory")] = False,
    until: Annotated[
        str | None, typer.Option(help="stop after this stage (world, provision, simulate, …)")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
    world: Annotated[
        str,
        typer.Option(
            "--world",
            envvar="DFP_WORLD",
            help="moto (the embedded moto, or AWS_ENDPOINT_URL) or localstack (LocalStack "
            "4.14.0 on this host beside the embedded moto)",
        ),
    ] = "moto",
    every: Annotated[
        bool,
        typer.Option(
            "--all",
            help="run every scenario of the library, each into OUT/NAME (OUT defaults to runs/)",
        ),
    ] = False,
) -> None:
    """Run a scenario end to end and write RUN_DIR/summary.json and RUN_DIR/report.html."""
    from harness.runner import run as run_scenario

    _setup_logging(verbose)
    _sigterm_to_exit()
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if world not in ("moto", "localstack"):
        _refuse(f"--world (or DFP_WORLD) {world!r}: choose moto or localstack")
    if world == "localstack":
        from emulation.localstack import Installation, LocalStackUnavailable

        if endpoint:
            _refuse(
                f"--world localstack starts its own LocalStack, but AWS_ENDPOINT_URL is set "
                f"({endpoint}); unset it, or run without --world to use that endpoint"
            )
        try:
            Installation.find()
        except LocalStackUnavailable as exc:
            _refuse(str(exc))
    elif endpoint:
        try:
            check_endpoint(endpoint)
        except UnsafeEndpointError as exc:
            _refuse(str(exc))
    if every:
        if scenario != DEFAULT_SCENARIO:
            _refuse(f"give a scenario ({scenario!r}) or --all, not both")
        _run_library(out, seed, force, until, world)
    try:
        chosen = load_scenario(scenario)
        if seed is not None:
            chosen = chosen.with_seed(seed)
    except ScenarioError as exc:
        _refuse(str(exc))
    if chosen.faults.in_the_world and (world == "localstack" or endpoint):
        _refuse(
            f"{chosen.name}: faults.{', faults.'.join(chosen.faults.in_the_world)} are injected "
            f"by the embedded moto, and this run's world is "
            f"{'LocalStack' if world == 'localstack' else endpoint}; run it with --world moto "
            "and without AWS_ENDPOINT_URL"
        )
    out_dir = out or Path("runs") / chosen.name
    progress = _progress

    console.print(f"dfp run [bold]{chosen.name}[/] (seed {chosen.seed}) → {escape(str(out_dir))}")
    try:
        result = run_scenario(
            chosen, out_dir, force=force, until=until, progress=progress, engine=world
        )
    except (OutputDirError, ValueError) as exc:
        _refuse(str(exc))
    except KeyboardInterrupt:
        _clock.stop()
        console.print("[yellow]interrupted; the local world was stopped[/]")
        raise typer.Exit(130) from None
    finally:
        _clock.stop()
    _print_verdict(result.summary, out_dir)
    raise typer.Exit(0 if result.ok else 1)


def _stage_step(stage: str) -> tuple[str, str]:
    """What a running stage is doing, where it says: its step (the forecast's AutoML training
    steps, the Glue job the ETL or enrichment runs) and how far that step is (its Spark stage's
    tasks), each empty when unknown. A real dataset's stage takes minutes."""
    if stage == "forecast":
        from emulation.sagemaker import training_steps

        return "; ".join(training_steps().values()), ""
    if stage in ("etl", "enrich"):
        from emulation.glue.jobs import running_job
        from emulation.glue.spark import spark_progress

        job = running_job()
        return (f"Glue job {job}", spark_progress()) if job else ("", "")
    return "", ""


def _said(step: str, progress: str) -> str:
    return ", ".join(part for part in (step, progress) if part)


class _StageClock:
    """While a stage runs, how long it has been running and what it is doing: a spinner with the
    seconds, the step and its progress on a terminal; in a log, a line when a step begins and at
    least one a minute (a real dataset's ETL or forecast takes minutes)."""

    LOG_EVERY = 60.0
    LOOK_EVERY = 1.0

    def __init__(self) -> None:
        self._stop: threading.Event | None = None
        self._thread: threading.Thread | None = None

    def start(self, stage: str) -> None:
        self.stop()
        stop = self._stop = threading.Event()
        began = time.monotonic()

        def tick() -> None:
            if console.is_terminal:
                with console.status(f"{stage} …") as status:
                    while not stop.wait(self.LOOK_EVERY):
                        doing = _said(*_stage_step(stage))
                        status.update(f"{stage} … {time.monotonic() - began:.0f} s"
                                      + (f" · {escape(doing)}" if doing else ""))  # fmt: skip
                return
            said, last = "", time.monotonic()
            while not stop.wait(self.LOOK_EVERY):
                (step, progress), now = _stage_step(stage), time.monotonic()
                # a line as each step begins (not as its tasks count up), and one a minute
                if (step and step != said) or now - last >= self.LOG_EVERY:
                    doing = _said(step, progress)
                    console.print(f"  {stage} still running ({now - began:.0f} s)"
                                  + (f": {escape(doing)}" if doing else ""))  # fmt: skip
                    said, last = step or said, now

        self._thread = threading.Thread(target=tick, name=f"clock-{stage}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._stop is not None:
            self._stop.set()
            if self._thread is not None:
                self._thread.join(timeout=5)
        self._stop = self._thread = None


_clock = _StageClock()


def _progress(event: str, stage: str, info: dict[str, Any]) -> None:
    """A run's stages as they start and end."""
    if event == "start":
        console.print(f"[cyan]▶[/] {stage} …")
        _clock.start(stage)
        return
    _clock.stop()
    if event == "succeeded":
        console.print(f"[green]✔[/] {stage} ({info['seconds']:.2f} s)")
    elif event == "failed":
        console.print(f"[red]✘[/] {stage}: {escape(str(info['error']))}")
    elif event == "skipped":
        console.print(f"[dim]- {stage} skipped[/]")


def _run_library(out: Path | None, seed: int | None, force: bool, until: str | None,
                 world: str) -> NoReturn:  # fmt: skip
    """``dfp run --all``: each scenario of the library in turn, in a world of its own; a table of
    verdicts at the end; exit 1 when any run failed."""
    from harness.runner import run as run_scenario

    names = list(list_scenarios())
    try:
        scenarios = [load_scenario(name) for name in names]
        if seed is not None:
            scenarios = [chosen.with_seed(seed) for chosen in scenarios]
    except ScenarioError as exc:
        _refuse(str(exc))
    root = out or Path("runs")
    table = Table(title=f"library: {len(scenarios)} scenarios")
    for column in ("scenario", "status", "expectations met", "seconds", "run directory"):
        table.add_column(column)
    failed = 0
    for number, chosen in enumerate(scenarios, 1):
        out_dir = root / chosen.name
        console.print(f"[bold]({number}/{len(scenarios)})[/] dfp run [bold]{chosen.name}[/] "
                      f"→ {escape(str(out_dir))}")  # fmt: skip
        try:
            result = run_scenario(chosen, out_dir, force=force, until=until, engine=world,
                                  progress=_progress)  # fmt: skip
        except (OutputDirError, ValueError) as exc:
            _refuse(str(exc))
        except KeyboardInterrupt:
            console.print("[yellow]interrupted; the local world was stopped[/]")
            raise typer.Exit(130) from None
        summary = result.summary
        met = sum(1 for e in summary["expectations"] if e["ok"])
        seconds = sum(s.get("seconds", 0.0) for s in summary["stages"].values())
        failed += not result.ok
        colour = "green" if result.ok else "red"
        table.add_row(escape(chosen.name), f"[{colour}]{summary['status']}[/]",
                      f"{met}/{len(summary['expectations'])}", f"{seconds:.0f}",
                      escape(str(out_dir)))  # fmt: skip
        console.print(f"[{colour}]{summary['status']}[/] {escape(chosen.name)}")
    console.print(table)
    raise typer.Exit(1 if failed else 0)


def _shown(value: Any) -> str:
    """A value as JSON, its numbers to six significant digits: ``0.8333`` for a ratio computed as
    0.8333001036721001, ``1`` for a bound the schema read as 1.0. Six digits still tell a failed
    ``max: 0.9`` from 0.90004; ``summary.json`` keeps every digit."""

    def short(v: Any) -> Any:
        if isinstance(v, float) and math.isfinite(v):
            rounded = float(f"{v:.6g}")
            return int(rounded) if rounded.is_integer() and abs(rounded) < 1e15 else rounded
        if isinstance(v, dict):
            return {k: short(x) for k, x in v.items()}
        if isinstance(v, list):
            return [short(x) for x in v]
        return v

    return json.dumps(short(value))


def _print_verdict(summary: dict[str, Any], out_dir: Path) -> None:
    table = Table(title="expectations", show_lines=False)
    for column in ("value", "expected", "actual", ""):
        table.add_column(column)
    for row in summary["expectations"]:
        table.add_row(
            escape(row["path"]),
            escape(_shown(row["expected"])),
            escape(_shown(row["actual"])),
            "[green]ok[/]"
            if row["ok"]
            else f"[dim]{escape(str(row['reason']))}[/]"
            if row["ok"] is None
            else f"[red]FAILED[/] {escape(str(row.get('reason', '')))}",
        )
    if summary["expectations"]:
        console.print(table)
    colour = "green" if summary["status"] == "succeeded" else "red"
    console.print(
        f"[{colour}]run {summary['status']}[/]: {escape(str(out_dir / 'summary.json'))}, "
        f"{escape(str(out_dir / 'report.html'))}"
    )


@app.command()
def simulate(
    scenario: Annotated[
        str, typer.Argument(help="scenario name (in scenarios/) or path to a YAML file")
    ] = DEFAULT_SCENARIO,
    out: Annotated[Path, typer.Option("--out", "-o", help="output directory")] = Path("simulation"),
    seed: Annotated[int | None, typer.Option(help="override the scenario's seed")] = None,
    force: Annotated[bool, typer.Option(help="replace a non-empty output directory")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Generate a scenario's world, its DMS messages (NDJSON) and the ground truth into OUT."""
    from harness.files import check_directory, prepare_directory
    from harness.simulation import simulate as simulate_scenario
    from harness.simulation import write_simulation
    from simulator.source import SourceError

    _setup_logging(verbose)
    try:
        chosen = load_scenario(scenario)
        if seed is not None:
            chosen = chosen.with_seed(seed)
    except ScenarioError as exc:
        _refuse(str(exc))
    try:
        check_directory(out, force)  # refuse before generating anything
    except OutputDirError as exc:
        _refuse(str(exc))
    with console.status(f"simulating {chosen.name} (seed {chosen.seed}) …"):
        try:
            sim = simulate_scenario(chosen)
        except SourceError as exc:  # the user's own files: named, not a traceback, no folder
            _refuse(str(exc))
    try:
        prepare_directory(out, force, kind="simulation")
    except OutputDirError as exc:
        _refuse(str(exc))
    with console.status(
        f"writing {len(sim.cdc):,} DMS messages and the world to {escape(str(out))} …"
    ):
        manifest = write_simulation(sim, out, force=True)
    table = Table(title=escape(f"{chosen.name} (seed {chosen.seed}) → {out}"))
    table.add_column("file")
    table.add_column("records", justify="right")
    for name, count in manifest["records"].items():
        table.add_row(escape(name), f"{count:,}")
    console.print(table)
    console.print(
        "CDC operations: " + ", ".join(f"{k} {v:,}" for k, v in manifest["cdc_operations"].items())
    )


@app.command()
def parity(
    local_export: Annotated[Path, typer.Argument(help="export in the AWS layout (file or dir)")],
    other_export: Annotated[Path, typer.Argument(help="the export to compare it with")],
    actuals: Annotated[
        Path, typer.Option("--actuals", help="actuals CSV: item_id, timestamp, demand")
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="where parity.json/.html go")] = Path(
        "parity"
    ),
    names: Annotated[tuple[str, str], typer.Option("--names", help="labels of the two exports")] = (
        "local",
        "other",
    ),
    frequency: Annotated[
        str, typer.Option(help="the forecast's frequency (D, W, M, 3M, Y, 1H…), for MASE's season")
    ] = "D",
) -> None:
    """Score two forecast exports on the same actuals with AWS's metrics, side by side."""
    from harness.parity import ParityInputError, compare, read_actuals, read_export, write_plot

    _setup_logging(False)
    try:
        result = compare(
            read_export(local_export),
            read_export(other_export),
            read_actuals(actuals),
            names=names,
            frequency=frequency,
        )
    except ParityInputError as exc:
        _refuse(str(exc))
    try:  # parity's own directory: replaced when dfp made it, refused otherwise
        prepare_output_dir(out, force=True, kind="parity")
    except OutputDirError as exc:
        _refuse(str(exc))
    (out / "parity.json").write_text(result.to_json() + "\n")
    write_plot(result, out / "parity.html")
    table = Table(
        title=escape(
            f"{result.items} items, {result.points} points, "
            f"{result.window[0]} to {result.window[1]}"
        )
    )
    table.add_column("metric")
    for name in (*result.names, "difference"):
        table.add_column(escape(name), justify="right")

    def cell(value: Any) -> str:
        return "—" if value is None else f"{value:.4f}"

    for row in result.table():
        table.add_row(row["metric"], *(cell(row[k]) for k in (*result.names, "difference")))
    Console().print(table)
    for name, part in result.left_out.items():
        reasons = []
        if part["not_in_the_other_export"]:
            reasons.append(f"{part['not_in_the_other_export']} not in the other export")
        if part["without_an_actual"]:
            reasons.append(f"{part['without_an_actual']} without an actual")
        if part["only_columns"]:
            reasons.append(f"its {', '.join(part['only_columns'])} not compared (the other "
                           "lacks them)")  # fmt: skip
        if reasons:
            console.print(Text(f"{name}: {part['scored']} of {part['rows']} rows scored; "
                               + "; ".join(reasons)))  # fmt: skip
    point = result.metrics[result.names[0]].get("point_forecast_type")
    if point not in ("mean", "0.5", None):
        console.print(Text(f"WAPE, RMSE, MASE and MAPE are of the p{float(point) * 100:g} "
                           "forecast: the exports share neither mean nor p50"))  # fmt: skip
    console.print(Text(f"wrote {out / 'parity.json'} and {out / 'parity.html'}"))


@app.command()
def serve(
    run_dir: Annotated[Path, typer.Argument(help="a run directory (dfp run … --out RUN_DIR)")],
    host: Annotated[str, typer.Option(help="address to bind; loopback unless you say so")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, typer.Option(help="port (0 picks a free one)")] = 8000,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Serve the forecast page, its API and the run's dashboards from a local world."""
    import time

    from deploy.stack import load_stack
    from emulation import World
    from harness.serve import ForecastServer, ForecastSite

    _setup_logging(verbose)
    _sigterm_to_exit()
    if not 0 <= port <= 65535:
        _refuse(f"--port {port}: not a port number (0–65535)")
    if not is_local_host(host):
        console.print(
            Text.assemble(
                ("warning: ", "bold yellow"),
                f"--host {host} is not a loopback address: other machines on that network can "
                "reach this server, which has no authentication. Use it only on a network you "
                "trust.",
            ),
            soft_wrap=True,
        )
    with World(region=load_stack().local.region) as world:
        try:
            site = ForecastSite(world, run_dir)
        except FileNotFoundError as exc:
            _refuse(str(exc))
        try:
            server = ForecastServer(site, host=host, port=port).start()
        except OSError as exc:  # taken, not an address of this machine, not allowed
            _refuse(f"--host {host} --port {port}: cannot listen there: {exc.strerror or exc}")
        console.print(f"serving {escape(str(run_dir))} at [bold]{server.url}[/] (Ctrl-C stops)")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()


@app.command("world")
def world_command(
    run_dir: Annotated[Path, typer.Argument(help="a run directory (dfp run … --out RUN_DIR)")],
    port: Annotated[
        int, typer.Option(help="loopback port of the endpoint (0 picks a free one)")
    ] = 0,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Start a local world holding a finished run, print its environment, stay up until Ctrl-C.

    The buckets' objects, the Glue catalog with its partitions, the streams' records and the
    DynamoDB items the run left are loaded; boto3, the AWS CLI and awswrangler reach them through
    the printed AWS_ENDPOINT_URL.
    """
    import time

    from emulation.world import WorldError
    from harness.live import RunWorldError, world

    _setup_logging(verbose)
    _sigterm_to_exit()
    if not 0 <= port <= 65535:
        _refuse(f"--port {port}: not a port number (0–65535)")
    try:
        opened = world(run_dir, port=port or None)
        running = opened.__enter__()
    except (RunWorldError, WorldError) as exc:
        _refuse(str(exc))
    try:
        loaded = ", ".join(f"{n} {k}" for k, n in running.loaded.items() if n)
        console.print(f"world up at [bold]{running.endpoint_url}[/] holding "
                      f"{escape(str(run_dir))} ({loaded}); Ctrl-C stops it")  # fmt: skip
        # The environment alone goes to stdout: it can be pasted into a shell as it is.
        for name, value in running.exports().items():
            print(f"export {name}={value}", flush=True)
        print(f"# Athena database: {running.database}, workgroup: {running.workgroup}", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        opened.__exit__(None, None, None)


@app.command()
def bundle(
    out: Annotated[Path, typer.Argument(help="directory to write the bundle into")] = Path(
        "bundle"
    ),
    flink_jar: Annotated[
        Path | None,
        typer.Option(help="the Managed Flink dependency jar (default: the one set-up built)"),
    ] = None,
    force: Annotated[bool, typer.Option(help="replace a non-empty directory")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Build every deployable artifact reproducibly and write manifest.json (sha256 of each)."""
    from deploy.bundle import BundleError, build_bundle, manifest_sha256

    _setup_logging(verbose)
    try:
        manifest = build_bundle(out, flink_jar=flink_jar, force=force)
    except BundleError as exc:
        _refuse(str(exc))
    table = Table("artifact", "kind", "bytes", "sha256", title=escape(f"bundle {out}"))
    for path, entry in sorted(manifest["artifacts"].items()):
        table.add_row(
            escape(path), entry["kind"], f"{entry['bytes']:,}", entry["sha256"][:16] + "…"
        )
    Console().print(table)
    for gap in manifest["incomplete"]:
        console.print(
            f"[yellow]incomplete:[/] {escape(gap['artifact'])}: {escape(gap['reason'])}",
            soft_wrap=True,
        )
    console.print(Text(f"manifest sha256 {manifest_sha256(out)}: {out / 'manifest.json'}"))


@app.command()
def validate(
    bundle_dir: Annotated[Path, typer.Argument(metavar="BUNDLE", help="a bundle (dfp bundle)")],
    scenario: Annotated[
        list[str] | None,
        typer.Option("--scenario", "-s", help="scenario to run (repeatable; default: smoke)"),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", "-o", help="report directory (default: BUNDLE-validation)"),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run scenarios on exactly the bundle's artifacts; write validation.json bound to its
    manifest hash (exit 1 when a scenario fails)."""
    from deploy.bundle import BundleError
    from harness.validate import validate_bundle

    _setup_logging(verbose)
    _sigterm_to_exit()
    names = scenario or [DEFAULT_SCENARIO]
    for name in names:
        try:
            load_scenario(name)
        except ScenarioError as exc:
            _refuse(str(exc))

    def progress(event: str, info: dict[str, Any]) -> None:
        if event == "start":
            console.print(
                f"[cyan]▶ {escape(info['scenario'])}[/] on the bundle's code → "
                f"{escape(info['run_dir'])}"
            )
        else:
            verdict = "[green]passed[/]" if info["passed"] else "[red]failed[/]"
            console.print(f"  {escape(info['scenario'])}: {verdict} in {info['seconds']} s")
            for reason in info.get("reasons", []):
                console.print(Text(f"    {reason}"), soft_wrap=True)

    try:
        report = validate_bundle(bundle_dir, names, out, progress=progress)
    except BundleError as exc:
        _refuse(str(exc))
    from deploy.promote import REPORT_FILE, default_report_dir

    where = (out or default_report_dir(bundle_dir)) / REPORT_FILE
    colour = "green" if report["passed"] else "red"
    console.print(
        f"[{colour}]validation {'passed' if report['passed'] else 'failed'}[/] for manifest "
        f"{report['manifest_sha256'][:16]}…: {escape(str(where))}"
    )
    raise typer.Exit(0 if report["passed"] else 1)


deploy_app = typer.Typer(no_args_is_help=True, help="Synthesize and promote a bundle (AWS CDK).")
app.add_typer(deploy_app, name="deploy")


@deploy_app.command("synth")
def deploy_synth(
    bundle_dir: Annotated[
        Path | None,
        typer.Argument(metavar="[BUNDLE]", help="a bundle (default: build one into OUT-bundle)"),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="CDK output directory")] = Path(
        "cdk.out"
    ),
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Offline: cdk synth (with cdk-nag), cfn-lint, and a check that the template ships exactly
    the bundle's bytes. Needs no AWS credentials."""
    from deploy.bundle import BundleError, build_bundle
    from deploy.promote import DeployError, synth

    _setup_logging(verbose)
    try:
        if bundle_dir is None:
            bundle_dir = out.with_name(out.name + "-bundle")
            build_bundle(bundle_dir, force=True)
            console.print(Text(f"built bundle {bundle_dir}"))
        with console.status("cdk synth (cdk-nag), cfn-lint …"):
            result = synth(bundle_dir, out)
    except (BundleError, DeployError) as exc:
        _refuse(str(exc))
    for finding in result.nag_violations:
        console.print(
            f"[red]cdk-nag {escape(finding['rule'])}[/]: {escape(finding['description'])}"
        )
        for resource in finding["resources"]:
            console.print(Text(f"    {resource}"))
    for line in result.cfn_lint:
        console.print(f"[red]cfn-lint[/] {escape(line)}", soft_wrap=True)
    for problem in result.asset_problems:
        console.print(f"[red]asset[/] {escape(problem)}", soft_wrap=True)
    if not result.ok:
        console.print(f"[red]synth failed[/]: {escape(str(out / 'synth.json'))}")
        raise typer.Exit(1)
    console.print(
        f"[green]synth passed[/]: {escape(str(result.template))} (cdk-nag: 0 open findings, "
        f"{len(result.acknowledged)} acknowledged with reasons; cfn-lint clean; "
        f"{len(result.assets)} assets = bundle artifacts; manifest {result.manifest_sha256[:16]}…)"
    )


@deploy_app.command("promote")
def deploy_promote(
    bundle_dir: Annotated[Path, typer.Argument(metavar="BUNDLE", help="a validated bundle")],
    report: Annotated[
        Path | None,
        typer.Option(help="validation report (default: BUNDLE-validation/validation.json)"),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="deploy without asking")] = False,
    region: Annotated[str | None, typer.Option(help="target region (default: AWS_REGION)")] = None,
    profile: Annotated[str | None, typer.Option(help="AWS profile")] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="CDK output directory")] = Path(
        "cdk.out"
    ),
) -> None:
    """Deploy a bundle with CDK — only if its bytes match its manifest and a passing validation
    report exists for that manifest. Shows the target account and region and asks first."""
    import boto3

    from deploy.promote import (
        REPORT_FILE,
        DeployError,
        PromotionRefused,
        Target,
        default_report_dir,
        promote,
    )

    report_path = report or default_report_dir(bundle_dir) / REPORT_FILE

    def confirm(target: Target) -> bool:
        console.print(
            f"Deploy bundle [bold]{escape(str(bundle_dir))}[/] to account "
            f"[bold]{escape(target.account)}[/] in region [bold]{escape(target.region)}[/] "
            f"(as {escape(target.arn)})?"
        )
        return yes or typer.confirm("Deploy?", default=False, err=True)

    try:
        region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        session = boto3.Session(profile_name=profile, region_name=region)
        target = promote(bundle_dir, report_path, session=session, confirm=confirm, out_dir=out)
    except PromotionRefused as exc:
        console.print("[bold red]promotion refused:[/]")
        for reason in exc.reasons:
            console.print(Text(f"  {reason}"), soft_wrap=True)
        raise typer.Exit(2) from None
    except DeployError as exc:
        console.print(Text.assemble(("error: ", "bold red"), str(exc)))
        raise typer.Exit(1) from None
    console.print(f"[green]deployed[/] to {escape(target.account)} / {escape(target.region)}")


@app.command()
def scenarios() -> None:
    """List the scenarios found and check each one against the schema."""
    bad = False
    for name, path in list_scenarios().items():
        try:
            load_scenario(str(path))
            print(f"{name}\t{path}")
        except ScenarioError as exc:
            bad = True
            print(f"{name}\t{path}\tINVALID\n{exc}")
    raise typer.Exit(1 if bad else 0)


def main() -> None:
    app(prog_name="dfp")


if __name__ == "__main__":
    sys.exit(main())
