"""The forecaster benchmark's results as one page: each dataset against its best single model.

``forecast_models.json`` holds, per dataset and metric, the local forecaster's difference from
the best single model with a 95 % interval and a verdict. Forty-odd such rows are easier to see
than to read: the page draws each difference relative to the best single model's value (%), its
interval as an error bar, coloured by verdict, one column per metric, left of zero is better.
It opens offline (plotly.js inline).

    .venv/bin/python benchmarks/forecast_models.py --chart    (from the saved results)
"""

from __future__ import annotations

import html
import math
from typing import Any

METRICS = ("sMAPE", "MASE", "WAPE", "wQL")
COLOURS = {"better": "#2e7d32", "tie": "#757575", "worse": "#c62828"}
SINGLES = ("auto_ets", "auto_theta", "seasonal_naive")
#: Each dataset's best single model per metric, chosen in hindsight (the verdicts' yardstick).
BEST = "best_single"


def comparisons(report: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per dataset and metric: the forecaster's value, the best single model's, the
    difference and its interval relative to that value (%), and the verdict. A dataset whose
    results lack the comparison (a run stopped before it) is left out."""
    rows = []
    for name, dataset in report.get("datasets", {}).items():
        results = dataset.get("results", {})
        local = results.get("local_forecaster", {})
        against = local.get("against_best_single") or {}
        for metric in METRICS:
            if metric not in against:
                continue
            found = against[metric]
            if found["best_single"] not in results:
                raise ValueError(
                    f"{name}: {metric}'s best single model {found['best_single']!r} has no results"
                )
            best = results[found["best_single"]][metric]
            low, high = found["interval_95"]
            relative = 100.0 / best if best else 0.0
            rows.append({
                "dataset": name, "metric": metric, "forecaster": local[metric],
                "best_single": found["best_single"], "best_value": best,
                "difference_pct": found["difference"] * relative,
                "interval_pct": (low * relative, high * relative), "verdict": found["verdict"],
                "origins": dataset.get("origins", 1), "series": dataset.get("series"),
            })  # fmt: skip
    return rows


def across(report: dict[str, Any]) -> dict[str, dict[str, dict[str, float | int]]]:
    """Across datasets, per metric and single model (and each dataset's best one in hindsight):
    the forecaster's value relative to the model's, averaged as a geometric mean of the datasets'
    ratios (M4's relative measures: a set twice as good counts as much as one twice as bad), and
    on how many datasets it was lower. A dataset where either value is 0 leaves that metric's
    ratio (``datasets`` counts those that are in). What a verdict per dataset cannot say: how
    the forecaster stands against each model over data of every kind at once."""
    out: dict[str, dict[str, dict[str, float | int]]] = {}
    for metric in METRICS:
        logs: dict[str, list[float]] = {model: [] for model in (*SINGLES, BEST)}
        for dataset in report.get("datasets", {}).values():
            results = dataset.get("results", {})
            local = results.get("local_forecaster", {}).get(metric)
            values = {m: results[m][metric] for m in SINGLES if metric in results.get(m, {})}
            if local is None or not values:
                continue
            values[BEST] = min(values.values())
            for model, value in values.items():
                if local > 0 and value > 0:
                    logs[model].append(math.log(local / value))
        out[metric] = {model: {"ratio": round(math.exp(sum(v) / len(v)), 3),
                               "lower_on": sum(x < 0 for x in v), "datasets": len(v)}
                       for model, v in logs.items() if v}  # fmt: skip
    return out


def across_table(summary: dict[str, dict[str, dict[str, float | int]]]) -> str:
    """:func:`across` as an HTML table, one row per metric."""
    models = [m for m in (*SINGLES, BEST) if any(m in row for row in summary.values())]
    names = {BEST: "each dataset's best single model"}
    head = "".join(f"<th>{html.escape(names.get(m, m))}</th>" for m in models)
    body = "".join(
        f"<tr><th>{metric}</th>" + "".join(
            f"<td>{row[m]['ratio']:.3f}× (lower on {row[m]['lower_on']} of {row[m]['datasets']})"
            "</td>" if m in row else "<td></td>" for m in models) + "</tr>"
        for metric, row in summary.items() if row
    )  # fmt: skip
    return ("<h3 style='font-family:sans-serif'>Across datasets: the forecaster's value relative "
            "to each model's (geometric mean of the datasets' ratios; below 1 is better)</h3>"
            "<table style='font-family:sans-serif;border-collapse:collapse' cellpadding='6'>"
            f"<tr><th></th>{head}</tr>{body}</table>")  # fmt: skip


def tally(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {verdict: sum(r["verdict"] == verdict for r in rows) for verdict in COLOURS}


def chart(report: dict[str, Any]) -> str:
    """The page (self-contained HTML) for a ``forecast_models.json`` report."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = comparisons(report)
    if not rows:
        raise ValueError("forecast_models.json holds no dataset with against_best_single")
    names = list(dict.fromkeys(r["dataset"] for r in rows))
    counts = tally(rows)
    figure = make_subplots(rows=1, cols=len(METRICS), shared_yaxes=True,
                           subplot_titles=METRICS, horizontal_spacing=0.03)  # fmt: skip
    for col, metric in enumerate(METRICS, start=1):
        for verdict, colour in COLOURS.items():
            chosen = [r for r in rows if r["metric"] == metric and r["verdict"] == verdict]
            if not chosen:
                continue
            figure.add_trace(go.Scatter(
                x=[r["difference_pct"] for r in chosen], y=[r["dataset"] for r in chosen],
                mode="markers", name=verdict, legendgroup=verdict, showlegend=col == 1,
                marker={"color": colour, "size": 9},
                error_x={"type": "data", "symmetric": False, "color": colour,
                         "array": [r["interval_pct"][1] - r["difference_pct"] for r in chosen],
                         "arrayminus": [r["difference_pct"] - r["interval_pct"][0]
                                        for r in chosen]},
                customdata=[[r["forecaster"], r["best_single"], r["best_value"], r["origins"],
                             r["series"]] for r in chosen],
                hovertemplate=("%{y}: forecaster %{customdata[0]} against %{customdata[1]}'s "
                               "%{customdata[2]} (%{x:+.1f} %)<br>%{customdata[4]} series, "
                               "%{customdata[3]} origin(s)<extra>" + verdict + "</extra>"),
            ), row=1, col=col)  # fmt: skip
        figure.add_vline(x=0, line={"color": "#000", "width": 1}, row=1, col=col)
        figure.update_xaxes(title_text="% vs best single", row=1, col=col)
    figure.update_yaxes(categoryorder="array", categoryarray=names[::-1], autorange=True)
    figure.update_layout(
        title=(f"Local forecaster against the best single model per metric (left of 0 is "
               f"better): {counts['better']} better · {counts['tie']} tie · "
               f"{counts['worse']} worse of {len(rows)}"),
        height=160 + 34 * len(names), template="plotly_white",
        legend={"orientation": "h", "y": -0.12},
    )  # fmt: skip
    page = figure.to_html(include_plotlyjs=True, full_html=True)
    return page.replace("</body>", across_table(across(report)) + "</body>", 1)
