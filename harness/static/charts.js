// The one place that builds the forecast chart, used by the run report and the forecast page.
// product: {item_id, name, history: [[date, units]...], truth: [[date, expected]...],
//           forecast: [{date, p10, p50, p90}...], recent_daily_demand}
function dfpForecastFigure(product) {
  const f = product.forecast || [];
  const dates = f.map((r) => r.date.slice(0, 10));
  const data = [
    {x: dates.concat(dates.slice().reverse()),
     y: f.map((r) => r.p90).concat(f.map((r) => r.p10).reverse()),
     fill: "toself", fillcolor: "rgba(214,39,40,0.18)", line: {width: 0},
     name: "P10–P90", hoverinfo: "skip", type: "scatter"},
    {x: dates, y: f.map((r) => r.p50), name: "forecast P50", type: "scatter",
     mode: "lines+markers", line: {color: "rgb(214,39,40)"}},
  ];
  if (product.history && product.history.length) {
    data.push({x: product.history.map((r) => r[0]), y: product.history.map((r) => r[1]),
               name: "actual", type: "scatter", mode: "lines", line: {color: "#1f2933"}});
  }
  if (product.truth && product.truth.length) {
    data.push({x: product.truth.map((r) => r[0]), y: product.truth.map((r) => r[1]),
               name: "ground truth (expected)", type: "scatter", mode: "lines",
               line: {color: "#2f9e44", dash: "dot"}});
  }
  if (product.recent_daily_demand !== undefined && product.recent_daily_demand !== null
      && dates.length) {
    // A forecast per week, month or year holds that many days of demand: the daily rate is
    // drawn per period (days to the next forecast date, the last period as long as the one
    // before), in the forecast's own units.
    const day = 86400000;
    const gaps = dates.slice(1).map((d, i) => (Date.parse(d) - Date.parse(dates[i])) / day);
    const days = gaps.concat(gaps.length ? [gaps[gaps.length - 1]] : [1]);
    const rate = product.recent_daily_demand;
    if (days.every((n) => n === 1)) {
      data.push({x: [dates[0], dates[dates.length - 1]], y: [rate, rate],
                 name: "recent daily demand", type: "scatter", mode: "lines",
                 line: {color: "#616e7c", dash: "dash"}});
    } else {
      data.push({x: dates, y: days.map((n) => rate * n),
                 name: "recent demand per period (daily rate × days)", type: "scatter",
                 mode: "lines", line: {color: "#616e7c", dash: "dash", shape: "hv"}});
    }
  }
  const layout = {
    title: {text: `${product.item_id}${product.name ? " · " + product.name : ""}` +
                  `${product.location ? " · " + product.location : ""}`},
    template: "plotly_white", margin: {t: 50, r: 20, b: 40, l: 50},
    xaxis: {title: {text: "date"}}, yaxis: {title: {text: "units"}, rangemode: "tozero"},
    legend: {orientation: "h", y: -0.2},
  };
  return {data, layout};
}

// A product by store narrowed to one location: "" (every store: the product's own series),
// "region:NAME" (its stores there, summed per date) or "store:ID". Quantiles are summed as
// they are in the product's own series.
function dfpAtLocation(product, location) {
  if (!location || !product.locations) { return product; }
  const [kind, value] = [location.slice(0, location.indexOf(":")),
                         location.slice(location.indexOf(":") + 1)];
  const here = product.locations.filter((l) =>
    kind === "store" ? l.store_id === value : l.region === value);
  function sumPoints(lists) {
    const total = new Map();
    lists.flat().forEach(([d, v]) => total.set(d, (total.get(d) || 0) + v));
    return [...total.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1));
  }
  const rows = new Map();
  here.forEach((l) => l.forecast.forEach((r) => {
    const sum = rows.get(r.date) || {date: r.date, p10: 0, p50: 0, p90: 0};
    ["p10", "p50", "p90"].forEach((q) => { sum[q] += r[q]; });
    rows.set(r.date, sum);
  }));
  const label = kind === "store" ? `store ${value}` : `region ${value}`;
  return {item_id: product.item_id, name: product.name, location: label,
          forecast: [...rows.values()].sort((a, b) => (a.date < b.date ? -1 : 1)),
          history: sumPoints(here.map((l) => l.history)),
          truth: sumPoints(here.map((l) => l.truth))};
}
