"""``report.html``: one self-contained page per run (no CDN, opens offline).

It shows the run's verdict, the expectations, a timeline of stage durations, the forecast for any
product (selectable) with its P10–P90 band against the actuals and the ground truth, the accuracy
metrics against the baseline, the injected anomalies and the flagged outliers over time with the
alerts, the per-hop counts with the reconciliation, and the artifacts with their hashes.
Everything is inline (HTML, CSS, plotly.js and the shared chart builder), so the file can be
attached to a ticket or opened on a machine without network.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

import pandas as pd

from harness.charts import inline_scripts, json_for_script, product_series
from harness.run.layout import RunDir

_CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2rem auto;max-width:1100px;
color:#1f2933;padding:0 1rem}
h1{margin-bottom:.2rem}h2{margin-top:2rem;border-bottom:1px solid #e4e7eb;padding-bottom:.3rem}
.muted{color:#616e7c}.badge{display:inline-block;padding:.15rem .6rem;border-radius:1rem;
font-weight:600;font-size:.9rem}.ok{background:#e3f9e5;color:#207227}.bad{background:#ffe3e3;
color:#a61b1b}.skip{background:#f0f4f8;color:#52606d}
table{border-collapse:collapse;width:100%;font-size:.92rem}th,td{text-align:left;
padding:.35rem .6rem;border-bottom:1px solid #e4e7eb}th{background:#f5f7fa}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.bar{height:.9rem;background:#3e7cb1;border-radius:2px;min-width:2px}
code{font-size:.85rem;word-break:break-all}
.chart{min-height:300px;margin:1rem 0}select,input{font-size:1rem;padding:.3rem .5rem}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _badge(status: str) -> str:
    cls = {"succeeded": "ok", "failed": "bad", "ok": "ok"}.get(status, "skip")
    return f'<span class="badge {cls}">{_e(status)}</span>'


def _expectations(summary: dict[str, Any]) -> str:
    rows = summary.get("expectations") or []
    if not rows:
        return '<p class="muted">The scenario sets no expectations.</p>'
    body = "".join(
        f"<tr><td><code>{_e(r['path'])}</code></td><td>{_e(json.dumps(r['expected']))}</td>"
        f"<td>{_e(json.dumps(r['actual']))}</td>"
        f"<td>{_badge('ok' if r['ok'] else 'skipped' if r['ok'] is None else 'failed')}</td>"
        f"<td>{_e(r.get('reason', ''))}</td></tr>"
        for r in rows
    )
    return (
        "<table><tr><th>value</th><th>expected</th><th>actual</th><th></th><th>why</th></tr>"
        f"{body}</table>"
    )


def _stages(summary: dict[str, Any]) -> str:
    stages = summary.get("stages") or {}
    longest = max((s.get("seconds", 0.0) for s in stages.values()), default=0.0) or 1.0
    rows = []
    for name, stage in stages.items():
        seconds = stage.get("seconds", 0.0)
        width = 100.0 * seconds / longest
        error = f'<div class="muted">{_e(stage["error"])}</div>' if stage.get("error") else ""
        rows.append(
            f"<tr><td>{_e(name)}</td><td>{_badge(stage['status'])}</td>"
            f'<td class="num">{seconds:.2f} s</td>'
            f'<td style="width:55%"><div class="bar" style="width:{width:.1f}%"></div>{error}</td>'
            "</tr>"
        )
    return (
        "<table><tr><th>stage</th><th>status</th><th>time</th><th></th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _counts(summary: dict[str, Any]) -> str:
    counts = summary.get("counts") or {}
    rec = summary.get("reconciliation") or {}
    verdict = (
        f"<p>Reconciliation {_badge('ok' if rec.get('ok') else 'failed')} "
        f"lost {_e(rec.get('lost', 0))}, duplicated {_e(rec.get('duplicated', 0))}</p>"
    )
    problems = "".join(f"<li>{_e(p)}</li>" for p in rec.get("problems", []))
    if problems:
        verdict += f"<ul>{problems}</ul>"
    if not counts:
        return verdict + '<p class="muted">No hop has moved records in this run.</p>'
    extra = [k for k in ("redelivered", "duplicates_removed", "retried", "throttled")
             if any(k in c for c in counts.values())]  # fmt: skip
    rows = "".join(
        f"<tr><td>{_e(name)}</td><td class='num'>{c['in']}</td><td class='num'>{c['out']}</td>"
        f"<td class='num'>{c['rejected']}</td>"
        + "".join(f"<td class='num'>{c.get(k, 0)}</td>" for k in extra)
        + f"<td>{_e(', '.join(f'{k}: {v}' for k, v in c.get('reasons', {}).items()))}</td></tr>"
        for name, c in counts.items()
    )
    head = "".join(f"<th>{_e(k.replace('_', ' '))}</th>" for k in extra)
    return (
        verdict + f"<table><tr><th>hop</th><th>in</th><th>out</th><th>rejected</th>{head}"
        "<th>reasons</th></tr>" + rows + "</table>"
    )


def faults_section(summary: dict[str, Any]) -> str:
    """What the scenario injected, where each fault was caught, and what it cost."""
    faults = summary.get("faults")
    if not faults:
        return ""
    bad = faults.get("bad_records") or {}
    kinds = bad.get("by_kind") or {}
    hops = sorted({hop for k in kinds.values() for hop in k.get("caught_by", {})})
    rows = "".join(
        f"<tr><td>{_e(kind)}</td><td class='num'>{k['injected']}</td>"
        + "".join(f"<td class='num'>{k['caught_by'].get(h, '')}</td>" for h in hops)
        + f"<td>{_badge('ok' if k['caught'] == k['injected'] else 'failed')}</td></tr>"
        for kind, k in kinds.items()
    )
    table = (
        "<table><tr><th>bad record</th><th>injected</th>"
        + "".join(f"<th>caught by {_e(h)}</th>" for h in hops)
        + f"<th></th></tr>{rows}</table>"
    ) if kinds else ""  # fmt: skip
    counts = summary.get("counts") or {}
    dms, kinesis = faults.get("dms") or {}, faults.get("kinesis") or {}
    producer = counts.get("kinesis_producer", {})
    stream_seconds = (summary.get("stages") or {}).get("stream", {}).get("seconds")
    costs = [
        ("DMS changes delivered again (task restart)", dms.get("redelivered", 0),
         f"copies removed by the Glue job: "
         f"{(faults.get('duplicates_removed') or {}).get('glue_cdc_apply', 'not run')}"),
        ("DMS changes out of commit order (other keys)", dms.get("out_of_order", 0),
         "order per partition key kept; the anomaly job orders by event time"),
        ("PutRecords entries throttled", kinesis.get("put_records_entries_throttled", 0),
         f"producer retried {producer.get('retried', 0)} records; stream stage "
         f"{stream_seconds} s"),
        ("PutRecords calls throttled", kinesis.get("put_records_calls_throttled", 0),
         "retried by the SDK and the producer"),
        ("GetRecords calls throttled", kinesis.get("get_records_calls_throttled", 0),
         "retried by every reader (Firehose, the Flink connector, the harness)"),
        ("workflow events delivered twice (EventBridge)",
         (faults.get("events") or {}).get("delivered_twice", 0),
         "executions started / failed: forecast "
         f"{((summary.get('forecast') or {}).get('executions') or {}).get('started', '-')} / "
         f"{((summary.get('forecast') or {}).get('executions') or {}).get('failed', '-')}, "
         f"enrichment {((summary.get('enrich') or {}).get('executions') or {}).get('started', '-')}"
         f" / {((summary.get('enrich') or {}).get('executions') or {}).get('failed', '-')}"),
    ]  # fmt: skip
    for job, runs in sorted((faults.get("glue") or {}).items()):
        costs.append((f"Glue job {job}: runs failed after writing", runs.get("failed_on_purpose"),
                      f"{runs.get('runs')} runs, {runs.get('succeeded')} succeeded "
                      f"({runs.get('retried_by_glue')} retried by Glue, the rest by their "
                      "workflow)"))  # fmt: skip
    forecast = summary.get("forecast") or {}
    costs.append((
        "AutoML jobs failed (SageMaker internal error)",
        (faults.get("sagemaker") or {}).get("automl_jobs_failed_on_purpose", 0),
        f"forecast workflow {(forecast.get('execution') or {}).get('status', 'not run')}; "
        f"failure notices sent: {forecast.get('notices', 0)}"))  # fmt: skip
    flink = faults.get("flink") or {}
    if flink:
        again = sum(d.get("records_read_again", 0) for d in flink.get("drills", []))
        removed = flink.get("duplicates_removed") or {}
        matches = (summary.get("anomaly") or {}).get("matches_reference")
        later = [f"checkpoint {d['restored_checkpoint']} (taken after the drill's "
                 f"{d['checkpoint']}), reading again only what came after it"
                 for d in flink.get("drills", [])
                 if d.get("restored_checkpoint") not in (None, d.get("checkpoint"))]  # fmt: skip
        outcome = (f"{again} records read again; duplicates removed downstream: "
                   f"{removed.get('outliers', 0)} outliers, {removed.get('rejected', 0)} "
                   f"rejections; verdicts match the detector: {matches}"
                   + "".join(f"; Flink restored periodic {text}" for text in later))  # fmt: skip
        costs.append(("anomaly job killed mid-stream, restored from its latest snapshot",
                      flink.get("crashes", 0), outcome))  # fmt: skip
        costs.append(("anomaly job task failed mid-stream (Kinesis InternalFailure), restarted "
                      "in place from its latest checkpoint", flink.get("task_failures", 0),
                      outcome))  # fmt: skip
    world = faults.get("world") or {}
    if world:
        stream = summary.get("stream") or {}
        costs.append((
            f"world endpoint restarted mid-window (down {world.get('outage_seconds')} s each)",
            world.get("restarts", 0),
            f"producer calls that found no endpoint: {world.get('producer_unreachable_calls')}; "
            f"producer {world.get('producer_seconds')} s; stream holds every record once: "
            f"{stream.get('records')} records, in order per key: "
            f"{stream.get('ordered_per_partition_key')}"))  # fmt: skip
    drift = faults.get("schema_drift") or {}
    if drift:
        staged = drift.get("staging") or {}
        etl = (summary.get("etl") or {}).get("changes") or {}
        costs.append((
            f"DDL on {drift.get('table')}: " + "; ".join(drift.get("ddl", [])),
            len(drift.get("ddl", [])),
            f"{drift.get('control_records')} control records (Glue job set aside "
            f"{etl.get('control_records', 'not run')}); {drift.get('drifted_records')} rows in "
            f"the new shape; new column values dropped by the catalog's schema: "
            f"{staged.get('new_column_values_dropped', '-')}; changed column staged as "
            f"{staged.get('changed_column_staged_as', '-')}; anomaly job rejected "
            f"{(summary.get('anomaly') or {}).get('rejected', 'not run')}"))  # fmt: skip
    rows = "".join(
        f"<tr><td>{_e(what)}</td><td class='num'>{_e(n)}</td><td>{_e(cost)}</td></tr>"
        for what, n, cost in costs if n
    )  # fmt: skip
    other = (
        f"<table><tr><th>fault</th><th>injected</th><th>what it cost</th></tr>{rows}</table>"
        if rows else ""
    )  # fmt: skip
    missed = bad.get("missed", 0)
    verdict = (
        f"<p>{_e(faults.get('injected', 0))} faults injected; bad records caught "
        f"{_e(bad.get('caught', 0))} of {_e(bad.get('injected', 0))} "
        f"{_badge('ok' if not missed else 'failed')}</p>"
    )
    return f"<h2 id='faults'>Faults</h2>{verdict}{table}{other}"


def _artifacts(summary: dict[str, Any]) -> str:
    artifacts = summary.get("artifacts") or {}
    if not artifacts:
        return '<p class="muted">No artifacts.</p>'
    rows = "".join(
        f"<tr><td>{_e(path)}</td><td><code>{_e(digest)}</code></td></tr>"
        for path, digest in artifacts.items()
    )
    return f"<table><tr><th>file</th><th>sha256</th></tr>{rows}</table>"


def forecast_section(summary: dict[str, Any], run_dir: Path | None) -> str:
    """The forecast of a selectable product, and the metrics against the baseline."""
    forecast = summary.get("forecast")
    if not forecast:
        return '<p class="muted">This run produced no forecast.</p>'
    execution = forecast.get("execution") or {}
    if execution.get("status") not in (None, "SUCCEEDED"):
        notice = forecast.get("notice") or {}
        sent = (f"Failure notice sent to the alarm topic: <i>{_e(notice.get('subject'))}</i> "
                f"about {_e(notice.get('object'))}." if notice
                else "<b>No failure notice reached the alarm topic.</b>")  # fmt: skip
        return (
            f"<p class='bad'>The forecast workflow {_e(execution.get('status'))}: "
            f"<b>{_e(execution.get('error'))}</b> — {_e(execution.get('cause'))}</p>"
            f"<p>{sent}</p>"
        )
    products = product_series(run_dir) if run_dir else []
    metrics = forecast.get("metrics") or {}
    baseline = (forecast.get("baseline") or {}).get("metrics") or {}
    names = [k for k in metrics if k != "point_forecast_type"]
    rows = "".join(
        f"<tr><td>{_e(k)}</td><td class='num'>{_fmt(metrics.get(k))}</td>"
        f"<td class='num'>{_fmt(baseline.get(k))}</td></tr>"
        for k in names
    )
    models = ", ".join(f"{_e(m)}: {n}" for m, n in sorted(forecast.get("models", {}).items()))
    ratios = [k for k in names if k != "RMSE"]  # RMSE is in units: it would dwarf the ratios
    bars = {
        "data": [
            {"type": "bar", "name": "local forecaster", "x": ratios,
             "y": [metrics.get(k) for k in ratios]},
            {"type": "bar", "name": "SeasonalNaive", "x": ratios,
             "y": [baseline.get(k) for k in ratios]},
        ],
        "layout": {"barmode": "group", "template": "plotly_white", "height": 320,
                   "title": {"text": "Backtest accuracy (lower is better)"},
                   "margin": {"t": 50, "r": 20, "b": 60, "l": 50}},
    }  # fmt: skip
    options = "".join(
        f"<option value='{i}'>{_e(p['item_id'])}{' · ' + _e(p['name']) if p['name'] else ''}"
        "</option>"
        for i, p in enumerate(products)
    )
    stores = sorted({(loc["region"] or "", loc["store_id"]) for p in products
                     for loc in p.get("locations", [])})  # fmt: skip
    where = (
        "<option value=''>All stores</option>"
        + "".join(f"<option value='region:{_e(r)}'>Region {_e(r)}</option>"
                  for r in sorted({r for r, _ in stores}) if r)
        + "".join(f"<option value='store:{_e(s)}'>Store {_e(s)}{' · ' + _e(r) if r else ''}"
                  "</option>" for r, s in stores)
    )  # fmt: skip
    location = f" <label>Location <select id='location'>{where}</select></label>" if stores else ""
    picker = (
        f"<label>Product <select id='product'>{options}</select></label>{location}"
        "<div id='forecast-chart' class='chart' style='height:420px'></div>"
        if products
        else '<p class="muted">No per-product data in this run directory.</p>'
    )
    return (
        f"<p>{forecast.get('items')} items"
        + (f" in {forecast.get('series')} item × store series" if stores else "")
        + f", horizon {forecast.get('horizon')}, quantiles "
        f"{_e(forecast.get('quantiles'))}; models chosen per item: {models}.</p>"
        f"{picker}<div id='metrics-chart' class='chart'></div>"
        "<table><tr><th>metric</th><th>local forecaster</th><th>SeasonalNaive</th></tr>"
        f"{rows}</table>"
        f"<script>const DFP_PRODUCTS = {json_for_script(products)};"
        f"const DFP_METRICS = {json_for_script(bars)};</script>"
    )


def anomaly_section(summary: dict[str, Any], run_dir: Path | None) -> str:
    """Injected anomalies (ground truth) and flagged outliers per day, and the alerts."""
    injected: dict[str, dict[str, int]] = {}
    path = RunDir(run_dir).truth_anomalies if run_dir else None
    if path is not None and path.is_file():
        truth = pd.read_parquet(path)
        if len(truth):
            day = pd.to_datetime(truth["start"]).dt.strftime("%Y-%m-%d")
            counts = truth.groupby([day, truth["type"]]).size()
            for (day, kind), n in counts.items():
                injected.setdefault(kind, {})[day] = int(n)
    anomaly = summary.get("anomaly") or {}
    flagged = anomaly.get("flagged_per_day") or {}
    traces = [
        {"type": "bar", "name": f"injected {kind}", "x": list(days), "y": list(days.values())}
        for kind, days in sorted(injected.items())
    ]
    if flagged:
        traces.append({"type": "scatter", "mode": "lines+markers", "name": "flagged outliers",
                       "x": list(flagged), "y": list(flagged.values())})  # fmt: skip
    figure = {
        "data": traces,
        "layout": {"barmode": "stack", "template": "plotly_white", "height": 300,
                   "title": {"text": "Anomalies per day"},
                   "margin": {"t": 50, "r": 20, "b": 40, "l": 50}},
    }  # fmt: skip
    alerts = summary.get("alerts") or []
    alert_rows = "".join(
        f"<tr><td>{_e(a.get('rule'))}</td><td>{_e(a.get('product_id'))}</td>"
        f"<td>{_e(a.get('date'))}</td><td class='num'>{_e(a.get('value'))}</td></tr>"
        for a in alerts
    )
    alert_table = (
        "<table><tr><th>rule</th><th>product</th><th>day</th><th>value</th></tr>"
        f"{alert_rows}</table>"
        if alerts
        else '<p class="muted">No alerts were raised in this run.</p>'
    )
    scores = (
        f"<p>Detection: precision {_fmt(anomaly.get('precision'))}, recall "
        f"{_fmt(anomaly.get('recall'))}, F1 {_fmt(anomaly.get('f1'))}.</p>"
        if anomaly
        else '<p class="muted">This run has no anomaly-detection results.</p>'
    )
    chart = (
        f"<div id='anomaly-chart' class='chart'></div>"
        f"<script>const DFP_ANOMALIES = {json_for_script(figure)};</script>"
        if traces
        else ""
    )
    return scores + chart + "<h3>Alerts</h3>" + alert_table


def _fmt(value: Any) -> str:
    return "—" if value is None else f"{value:.4f}" if isinstance(value, float) else _e(value)


_DRAW = """
<script>
(function () {
  if (typeof Plotly === "undefined") { return; }
  const config = {displaylogo: false, responsive: true};
  const pick = document.getElementById("product");
  function draw() {
    const where = document.getElementById("location");
    const product = dfpAtLocation(DFP_PRODUCTS[Number(pick.value)], where ? where.value : "");
    const figure = dfpForecastFigure(product);
    Plotly.react("forecast-chart", figure.data, figure.layout, config);
  }
  if (pick && typeof DFP_PRODUCTS !== "undefined" && DFP_PRODUCTS.length) {
    pick.addEventListener("change", draw);
    const where = document.getElementById("location");
    if (where) { where.addEventListener("change", draw); }
    draw();
  }
  if (typeof DFP_METRICS !== "undefined") {
    Plotly.newPlot("metrics-chart", DFP_METRICS.data, DFP_METRICS.layout, config);
  }
  if (typeof DFP_ANOMALIES !== "undefined") {
    Plotly.newPlot("anomaly-chart", DFP_ANOMALIES.data, DFP_ANOMALIES.layout, config);
  }
})();
</script>
"""


def page(title: str, body: str, *, charts: bool) -> str:
    """A complete, self-contained page in the report's look."""
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style>"
        f"{inline_scripts() if charts else ''}</head><body>{body}"
        f"{_DRAW if charts else ''}</body></html>\n"
    )


def render_report(summary: dict[str, Any], run_dir: Path | None = None) -> str:
    title = f"dfp run: {summary.get('scenario')} (seed {summary.get('seed')})"
    body = (
        f"<h1>{_e(title)} {_badge(summary.get('status', 'unknown'))}</h1>"
        f"<p class='muted'>dfp-harness {_e(summary.get('version'))} · endpoint "
        f"{_e((summary.get('endpoint') or {}).get('kind'))}</p>"
        f"<h2>Expectations</h2>{_expectations(summary)}"
        f"<h2>Stages</h2>{_stages(summary)}"
        f"<h2 id='forecasts'>Forecast</h2>{forecast_section(summary, run_dir)}"
        f"<h2 id='outliers'>Outliers and alerts</h2>{anomaly_section(summary, run_dir)}"
        f"{faults_section(summary)}"
        f"<h2>Records per hop</h2>{_counts(summary)}"
        f"<h2>Artifacts</h2>{_artifacts(summary)}"
    )
    return page(title, body, charts=True)


def write_report(summary: dict[str, Any], path: Path) -> None:
    path.write_text(render_report(summary, path.parent))
