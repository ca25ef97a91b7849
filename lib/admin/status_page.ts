/**
 * The status page at `/` of the admin API (lib/admin/server.ts): one self-contained HTML page (no
 * framework, nothing fetched from elsewhere, so it works offline) that polls `/status` and
 * `/metrics` every {@link PAGE_REFRESH_MS} and shows the process's line, a table for each list
 * in `/status` (agents, services, connections), and each service's throughput over the last
 * minutes as a small chart drawn from `porthole_bytes_total`.
 */

/** How often the page polls. */
export const PAGE_REFRESH_MS = 2_000;
/** Samples each service's chart keeps (at {@link PAGE_REFRESH_MS}, five minutes). */
export const PAGE_SAMPLES = 150;

/** The page for `program` ("relay" or "agent"). */
export function statusPage(program: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>porthole ${program}</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
  h1 { font-size: 1.3em; } h2 { font-size: 1.05em; margin-top: 1.5em; }
  #lists h2 { text-transform: capitalize; }
  table { border-collapse: collapse; } td, th { padding: .2em .8em; text-align: left; }
  th { border-bottom: 1px solid #999; } tr:nth-child(even) td { background: #f3f3f3; }
  .chart { display: inline-block; margin: 0 1.5em 1em 0; } .chart svg { background: #f7f7f7; }
  #error { color: #b00; }
</style>
</head>
<body>
<h1>porthole ${program}</h1>
<p id="summary">loading…</p>
<p id="error"></p>
<div id="lists"></div>
<h2>Throughput per service (bytes/s, last minutes)</h2>
<div id="charts"></div>
<script>
"use strict";
const REFRESH_MS = ${PAGE_REFRESH_MS};
const SAMPLES = ${PAGE_SAMPLES};
const history = new Map(); // service -> { last, rates }
let lastAt;

function cell(row, text, tag) {
  const element = document.createElement(tag || "td");
  element.textContent = text;
  row.appendChild(element);
}

function show(value) {
  if (Array.isArray(value)) {
    return value.map(show).join(value.some((item) => typeof item === "object") ? "; " : ", ");
  }
  if (value !== null && typeof value === "object") {
    return Object.entries(value).map(([key, item]) => key + " " + show(item)).join(", ");
  }
  return String(value);
}

function renderLists(status) {
  const lists = document.getElementById("lists");
  lists.replaceChildren();
  for (const [name, value] of Object.entries(status)) {
    if (!Array.isArray(value)) {
      document.getElementById("summary").textContent = name + ": " +
        Object.entries(value).map(([key, item]) => key + " " + show(item)).join(", ");
      continue;
    }
    const title = document.createElement("h2");
    title.textContent = name + " (" + value.length + ")";
    lists.appendChild(title);
    const table = document.createElement("table");
    table.id = name;
    const columns = [...new Set(value.flatMap((entry) => Object.keys(entry)))];
    const head = table.createTHead().insertRow();
    columns.forEach((column) => cell(head, column, "th"));
    const body = table.createTBody();
    for (const entry of value) {
      const row = body.insertRow();
      columns.forEach((column) => cell(row, entry[column] === undefined ? "" : show(entry[column])));
    }
    lists.appendChild(table);
  }
}

function bytesPerService(metrics) {
  const totals = new Map();
  const pattern = /^porthole_bytes_total\\{(.*)\\} (\\S+)$/;
  for (const line of metrics.split("\\n")) {
    const match = pattern.exec(line);
    if (!match) continue;
    const service = /service="((?:[^"\\\\]|\\\\.)*)"/.exec(match[1]);
    if (service) totals.set(service[1], (totals.get(service[1]) || 0) + Number(match[2]));
  }
  return totals;
}

function renderCharts(totals, now) {
  const seconds = lastAt === undefined ? 0 : (now - lastAt) / 1000;
  for (const [service, total] of totals) {
    const entry = history.get(service) || { last: total, rates: [] };
    if (seconds > 0) entry.rates.push(Math.max(0, (total - entry.last) / seconds));
    entry.rates = entry.rates.slice(-SAMPLES);
    entry.last = total;
    history.set(service, entry);
  }
  lastAt = now;
  const charts = document.getElementById("charts");
  charts.replaceChildren();
  for (const [service, { rates, last }] of history) {
    const box = document.createElement("div");
    box.className = "chart";
    box.dataset.service = service;
    const top = Math.max(1, ...rates);
    const points = rates.map((rate, i) => (i * 300 / (SAMPLES - 1)).toFixed(1) + "," +
      (60 - rate / top * 56).toFixed(1)).join(" ");
    box.innerHTML = '<svg width="300" height="60" role="img"><polyline fill="none" ' +
      'stroke="#2a6" stroke-width="1.5" points="' + points + '"/></svg>';
    const label = document.createElement("div");
    const now = rates.length ? rates[rates.length - 1] : 0;
    label.textContent = service + ": " + Math.round(now) + " B/s now, " + last + " bytes in all";
    box.appendChild(label);
    charts.appendChild(box);
  }
}

async function refresh() {
  try {
    const [status, metrics] = await Promise.all([
      fetch("status").then((answer) => answer.json()),
      fetch("metrics").then((answer) => answer.text()),
    ]);
    renderLists(status);
    renderCharts(bytesPerService(metrics), performance.now());
    document.getElementById("error").textContent = "";
  } catch (error) {
    document.getElementById("error").textContent = "cannot reach the admin API: " + error.message;
  }
}

refresh();
setInterval(refresh, REFRESH_MS);
</script>
</body>
</html>
`;
}
