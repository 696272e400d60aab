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
    data.push({x: [dates[0], dates[dates.length - 1]],
               y: [product.recent_daily_demand, product.recent_daily_demand],
               name: "recent daily demand", type: "scatter", mode: "lines",
               line: {color: "#616e7c", dash: "dash"}});
  }
  const layout = {
    title: {text: `${product.item_id}${product.name ? " · " + product.name : ""}`},
    template: "plotly_white", margin: {t: 50, r: 20, b: 40, l: 50},
    xaxis: {title: {text: "date"}}, yaxis: {title: {text: "units"}, rangemode: "tozero"},
    legend: {orientation: "h", y: -0.2},
  };
  return {data, layout};
}
