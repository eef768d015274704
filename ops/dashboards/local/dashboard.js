// Renders a Cloud Monitoring dashboard (mosaic layout, PromQL tiles) against
// a Prometheus server, with uPlot. Each tile's element says how it went in
// `data-state` (ok, empty, error) so that a test can read it from the DOM;
// `body[data-ready]` is set once every tile has been drawn once.
"use strict";

const params = new URLSearchParams(location.search);
const PROMETHEUS = (params.get("prometheus") || "http://127.0.0.1:9095").replace(/\/$/, "");
const DASHBOARD = params.get("dashboard") || "../flask-app-rs.json";
const MINUTES = Number(params.get("minutes") || 15);
const REFRESH_MS = 15000;
const COLORS = ["#1a73e8", "#e8710a", "#1e8e3e", "#d93025", "#9334e6", "#12b5cb", "#f9ab00", "#5f6368"];

function reportError(message) {
  const errors = document.getElementById("errors");
  errors.textContent += message + "\n";
  document.body.dataset.errors = String(Number(document.body.dataset.errors || 0) + 1);
}
window.addEventListener("error", (e) => reportError(`error: ${e.message}`));
window.addEventListener("unhandledrejection", (e) => reportError(`error: ${e.reason}`));

async function api(path, query) {
  const url = `${PROMETHEUS}/api/v1/${path}?${new URLSearchParams(query)}`;
  const response = await fetch(url);
  const body = await response.json();
  if (body.status !== "success") {
    throw new Error(`${path}: ${body.error || response.status}`);
  }
  return body.data;
}

function timeRange() {
  const end = Date.now() / 1000;
  const start = end - MINUTES * 60;
  // About 120 points across the range, at least one per second.
  const step = Math.max(1, Math.round((end - start) / 120));
  return { start, end, step };
}

// `${labels.status}` (and `${metric.labels.status}`) in a legend template.
function legend(template, metric, fallback) {
  if (!template) {
    const pairs = Object.entries(metric).filter(([k]) => k !== "__name__");
    return pairs.length ? pairs.map(([k, v]) => `${k}=${v}`).join(", ") : fallback;
  }
  return template.replace(/\$\{(?:metric\.)?labels\.([A-Za-z_][A-Za-z0-9_]*)\}/g,
    (_, name) => metric[name] ?? "");
}

function formatValue(v) {
  if (v == null || Number.isNaN(v)) return "–";
  const abs = Math.abs(v);
  if (abs >= 1e9) return (v / 1e9).toFixed(2) + "G";
  if (abs >= 1e6) return (v / 1e6).toFixed(2) + "M";
  if (abs >= 1e3) return (v / 1e3).toFixed(2) + "k";
  if (abs === 0 || abs >= 1) return v.toFixed(abs >= 100 ? 0 : 2);
  return v.toPrecision(3);
}

function tileElement(tile) {
  const element = document.createElement("section");
  element.className = "tile";
  element.style.gridColumn = `${(tile.xPos || 0) + 1} / span ${tile.width || 24}`;
  element.style.gridRow = `${(tile.yPos || 0) + 1} / span ${tile.height || 16}`;
  const title = document.createElement("h2");
  title.textContent = tile.widget.title || "";
  title.title = title.textContent;
  const body = document.createElement("div");
  body.className = "body";
  element.append(title, body);
  element.dataset.state = "loading";
  element.dataset.title = title.textContent;
  return { element, body };
}

// One series per result of each data set, on the union of their times.
async function fetchDataSets(dataSets, range) {
  const results = await Promise.all(dataSets.map((set) =>
    api("query_range", { query: set.timeSeriesQuery.prometheusQuery, ...range })));
  const series = [];
  results.forEach((data, i) => {
    for (const item of data.result) {
      series.push({
        label: legend(dataSets[i].legendTemplate, item.metric, `series ${series.length + 1}`),
        plotType: dataSets[i].plotType || "LINE",
        points: new Map(item.values.map(([t, v]) => [t, Number(v)])),
      });
    }
  });
  return series;
}

// Exemplars of the histogram a `histogram_quantile` query reads, in range.
async function fetchExemplars(dataSets, range) {
  const names = new Set();
  for (const set of dataSets) {
    const query = set.timeSeriesQuery.prometheusQuery;
    const match = /histogram_quantile[\s\S]*?([A-Za-z_:][A-Za-z0-9_:]*_bucket)/.exec(query);
    if (match) names.add(match[1]);
  }
  const exemplars = [];
  for (const name of names) {
    const data = await api("query_exemplars", { query: name, start: range.start, end: range.end });
    for (const group of data) {
      for (const e of group.exemplars) {
        exemplars.push({ t: Number(e.timestamp), v: Number(e.value), labels: e.labels, series: group.seriesLabels });
      }
    }
  }
  exemplars.sort((a, b) => a.t - b.t);
  return exemplars;
}

function align(series, exemplars) {
  const times = new Set();
  for (const s of series) for (const t of s.points.keys()) times.add(t);
  for (const e of exemplars) times.add(e.t);
  const xs = [...times].sort((a, b) => a - b);
  const columns = series.map((s) => xs.map((t) => (s.points.has(t) ? s.points.get(t) : null)));
  // Stacked plots add up, in order, per time.
  const stacked = series.map((s) => s.plotType.startsWith("STACKED"));
  const running = xs.map(() => 0);
  columns.forEach((column, i) => {
    if (!stacked[i]) return;
    columns[i] = column.map((v, j) => (v == null ? null : (running[j] += v)));
  });
  const exemplarColumn = xs.map(() => null);
  const byTime = new Map(exemplars.map((e) => [e.t, e]));
  xs.forEach((t, j) => { if (byTime.has(t)) exemplarColumn[j] = byTime.get(t).v; });
  return { xs, columns, exemplarColumn };
}

function drawChart(body, widget, series, exemplars, previous) {
  if (previous) previous.destroy();
  const { xs, columns, exemplarColumn } = align(series, exemplars);
  const uSeries = [{}];
  const data = [xs];
  series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const spec = { label: s.label, stroke: color, width: 1.5, spanGaps: true, value: (_, v) => formatValue(v) };
    if (s.plotType === "STACKED_AREA") spec.fill = color + "33";
    if (s.plotType === "STACKED_BAR") {
      spec.paths = uPlot.paths.bars({ size: [0.6, 8] });
      spec.fill = color + "99";
    }
    uSeries.push(spec);
    data.push(columns[i]);
  });
  if (exemplars.length) {
    uSeries.push({
      label: "exemplars",
      stroke: "#202124",
      paths: () => null,
      points: { show: true, size: 7, fill: "#fbbc04", stroke: "#202124" },
      value: (_, v) => formatValue(v),
    });
    data.push(exemplarColumn);
  }
  // A legend of many series (one per chaos status, say) would leave no room
  // for the chart: past a dozen, it is left out and the count is shown.
  const showLegend = uSeries.length <= 13;
  const legendHeight = showLegend ? 22 * Math.ceil(uSeries.length / 3) : 0;
  const options = {
    width: Math.max(body.clientWidth, 100),
    height: Math.max(body.clientHeight - legendHeight, 60),
    series: uSeries,
    axes: [{}, { label: widget.yAxis?.label || "", size: 60, values: (_, ticks) => ticks.map(formatValue) }],
    scales: {
      x: { time: true },
      // Stacked plots and counts start from zero.
      y: { range: (_, min, max) => [Math.min(0, min), max > min ? max : min + 1] },
    },
    legend: { show: showLegend, live: true },
  };
  body.title = showLegend ? "" : `${uSeries.length - 1} series`;
  return new uPlot(options, data, body);
}

function showExemplarIds(element, exemplars) {
  let line = element.querySelector(".exemplars");
  if (!exemplars.length) {
    if (line) line.remove();
    return;
  }
  if (!line) {
    line = document.createElement("div");
    line.className = "exemplars";
    element.append(line);
  }
  line.replaceChildren("latest traces: ");
  for (const e of exemplars.slice(-4).reverse()) {
    const id = e.labels.trace_id || "?";
    const project = e.labels.project_id;
    const link = document.createElement(project ? "a" : "span");
    if (project) {
      link.href = `https://console.cloud.google.com/traces/list?project=${encodeURIComponent(project)}&tid=${id}`;
    }
    link.textContent = id.slice(0, 12) + "… ";
    link.title = `trace ${id}, span ${e.labels.span_id || "?"}: ${formatValue(e.v)}s`;
    line.append(link);
  }
}

function renderScorecard(tile, widget) {
  const { element, body } = tileElement(tile);
  element.classList.add("scorecard");
  const value = document.createElement("div");
  value.className = "value";
  const spark = document.createElement("div");
  body.append(value, spark);
  let chart = null;
  return {
    element,
    async refresh() {
      const query = widget.scorecard.timeSeriesQuery.prometheusQuery;
      const [now, history] = await Promise.all([
        api("query", { query }),
        fetchDataSets([{ timeSeriesQuery: { prometheusQuery: query }, plotType: "LINE" }], timeRange()),
      ]);
      const sample = now.result[0];
      value.textContent = sample ? formatValue(Number(sample.value[1])) : "–";
      if (chart) chart.destroy();
      chart = null;
      if (history.length) {
        const { xs, columns } = align(history, []);
        chart = new uPlot({
          width: Math.max(body.clientWidth, 80),
          height: Math.max(body.clientHeight - 44, 24),
          series: [{}, { stroke: "#1a73e8", width: 1, spanGaps: true }],
          axes: [{ show: false }, { show: false }],
          legend: { show: false },
          cursor: { show: false },
          scales: { x: { time: true } },
        }, [xs, columns[0]], spark);
      }
      element.dataset.state = sample ? "ok" : "empty";
    },
  };
}

function renderXyChart(tile, widget) {
  const { element, body } = tileElement(tile);
  let chart = null;
  return {
    element,
    async refresh() {
      const range = timeRange();
      const [series, exemplars] = await Promise.all([
        fetchDataSets(widget.xyChart.dataSets, range),
        fetchExemplars(widget.xyChart.dataSets, range),
      ]);
      chart = drawChart(body, widget.xyChart, series, exemplars, chart);
      element.dataset.exemplars = String(exemplars.length);
      showExemplarIds(element, exemplars);
      const hasData = series.some((s) => [...s.points.values()].some((v) => Number.isFinite(v)));
      element.dataset.state = hasData ? "ok" : "empty";
    },
  };
}

async function main() {
  const response = await fetch(DASHBOARD);
  const dashboard = await response.json();
  document.getElementById("title").textContent = dashboard.displayName || DASHBOARD;
  document.getElementById("source").textContent = `${DASHBOARD} against ${PROMETHEUS}, last ${MINUTES} min`;
  document.title = `${dashboard.displayName} (local view)`;
  const grid = document.getElementById("grid");
  const tiles = (dashboard.mosaicLayout?.tiles || []).map((tile) => {
    const widget = tile.widget;
    if (widget.scorecard) return renderScorecard(tile, widget);
    if (widget.xyChart) return renderXyChart(tile, widget);
    const { element } = tileElement(tile);
    element.dataset.state = "error";
    element.append(`unsupported widget: ${Object.keys(widget).join(", ")}`);
    return { element, refresh: async () => {} };
  });
  grid.append(...tiles.map((t) => t.element));
  const refreshAll = () => Promise.all(tiles.map((t) => t.refresh().catch((err) => {
    t.element.dataset.state = "error";
    const message = document.createElement("div");
    message.className = "error";
    message.textContent = String(err.message || err);
    t.element.querySelector(".body").replaceChildren(message);
    console.error(`${t.element.dataset.title}: ${err.message || err}`);
  })));
  await refreshAll();
  document.body.dataset.ready = "true";
  setInterval(refreshAll, REFRESH_MS);
}

main().catch((err) => reportError(`cannot render the dashboard: ${err.message || err}`));
