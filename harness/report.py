"""``report.html``: one self-contained page per run (no CDN, opens offline).

It shows the run's verdict, the expectations, a timeline of stage durations, the per-hop counts
with the reconciliation, and the artifacts with their hashes. Everything is inline HTML and CSS,
so the file can be attached to a ticket or opened on a machine without network.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

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
    rows = "".join(
        f"<tr><td>{_e(name)}</td><td class='num'>{c['in']}</td><td class='num'>{c['out']}</td>"
        f"<td class='num'>{c['rejected']}</td>"
        f"<td>{_e(', '.join(f'{k}: {v}' for k, v in c.get('reasons', {}).items()))}</td></tr>"
        for name, c in counts.items()
    )
    return (
        verdict
        + "<table><tr><th>hop</th><th>in</th><th>out</th><th>rejected</th><th>reasons</th></tr>"
        + rows
        + "</table>"
    )


def _artifacts(summary: dict[str, Any]) -> str:
    artifacts = summary.get("artifacts") or {}
    if not artifacts:
        return '<p class="muted">No artifacts.</p>'
    rows = "".join(
        f"<tr><td>{_e(path)}</td><td><code>{_e(digest)}</code></td></tr>"
        for path, digest in artifacts.items()
    )
    return f"<table><tr><th>file</th><th>sha256</th></tr>{rows}</table>"


def render_report(summary: dict[str, Any]) -> str:
    title = f"dfp run: {summary.get('scenario')} (seed {summary.get('seed')})"
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{_e(title)} {_badge(summary.get('status', 'unknown'))}</h1>"
        f"<p class='muted'>dfp-harness {_e(summary.get('version'))} · endpoint "
        f"{_e((summary.get('endpoint') or {}).get('kind'))}</p>"
        f"<h2>Expectations</h2>{_expectations(summary)}"
        f"<h2>Stages</h2>{_stages(summary)}"
        f"<h2>Records per hop</h2>{_counts(summary)}"
        f"<h2>Artifacts</h2>{_artifacts(summary)}"
        "</body></html>\n"
    )


def write_report(summary: dict[str, Any], path: Path) -> None:
    path.write_text(render_report(summary))
