// The olla-ts status page: plain DOM code, no dependencies. It reads the same JSON routes
// scripts read (/internal/status, /internal/status/endpoints, /internal/status/models,
// /internal/stats/timeseries, and /internal/cluster for the other instances sharing state
// through Redis, shown only when there is a cluster), redraws every 2 s, and redraws at once when the live event
// stream (/internal/events) reports a change; if the stream fails, polling carries on.
// Every value from the server is put into the page with textContent, never as markup.
// With proxy.allow_management_routes on, each endpoint row offers drain/undrain (and
// sleep/wake for LMDeploy), each confirmed first, with the admin key asked for once when
// server.auth is on (kept for this tab only).
"use strict";

const POLL_MS = 2000;
const COLORS = [
  "#0969da",
  "#1a7f37",
  "#bf3989",
  "#9a6700",
  "#8250df",
  "#cf222e",
  "#1b7c83",
  "#6e7781",
];
const SVG = "http://www.w3.org/2000/svg";

const $ = (id) => document.getElementById(id);

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

async function getJson(path) {
  const response = await fetch(path, {
    headers: { accept: "application/json" },
    cache: "no-store",
  });
  if (!response.ok) throw new Error(`${path}: ${response.status}`);
  return response.json();
}

function statusCell(value) {
  const cell = el("td", value);
  cell.dataset.status = value;
  return cell;
}

function queueText(queue) {
  return queue ? `${queue.active}/${queue.max_concurrent} (+${queue.waiting})` : "-";
}

function engineText(engine) {
  if (!engine) return "-";
  const parts = [];
  if (engine.running !== undefined && engine.running !== null) parts.push(`run ${engine.running}`);
  if (engine.waiting !== undefined && engine.waiting !== null) parts.push(`wait ${engine.waiting}`);
  if (engine.kv_cache_usage !== undefined && engine.kv_cache_usage !== null) {
    parts.push(`kv ${Math.round(engine.kv_cache_usage * 100)}%`);
  }
  return parts.length > 0 ? parts.join(", ") : "-";
}

/** What /internal/endpoints/actions says; null until read or when actions are off. */
let actions = null;

async function act(name, action) {
  if (!globalThis.confirm(`${action} endpoint ${name}?`)) return;
  const headers = {};
  if (actions.admin_key_required) {
    let key = sessionStorage.getItem("olla-admin-key");
    if (!key) {
      key = globalThis.prompt("Admin key (server.auth.keys with admin: true)") ?? "";
      sessionStorage.setItem("olla-admin-key", key);
    }
    headers.authorization = `Bearer ${key}`;
  }
  const response = await fetch(`/internal/endpoints/${encodeURIComponent(name)}/${action}`, {
    method: "POST",
    headers,
  });
  if (!response.ok) {
    if (response.status === 401 || response.status === 403) {
      sessionStorage.removeItem("olla-admin-key");
    }
    const body = await response.json().catch(() => ({}));
    $("live").textContent = `${action} ${name} failed: ${body.message ?? response.status}`;
  }
  void refresh();
}

function actionsCell(endpoint) {
  const cell = el("td", undefined, "actions");
  if (!actions?.enabled) return cell;
  const button = (label, action) => {
    const node = el("button", label);
    node.type = "button";
    node.dataset.action = action;
    node.addEventListener("click", () => void act(endpoint.name, action));
    return node;
  };
  cell.append(endpoint.held ? button("undrain", "undrain") : button("drain", "drain"));
  if (endpoint.type === "lmdeploy") {
    cell.append(endpoint.sleeping ? button("wake", "wake") : button("sleep", "sleep"));
  }
  return cell;
}

function renderEndpoints(list) {
  const body = $("endpoints").tBodies[0];
  const rows = list.endpoints.map((endpoint) => {
    const row = document.createElement("tr");
    row.dataset.endpoint = endpoint.name;
    const status = endpoint.draining ? "draining" : endpoint.held ? "drained" : endpoint.status;
    row.append(
      el("td", endpoint.name),
      el("td", endpoint.type),
      el("td", endpoint.url),
      statusCell(status),
      statusCell(endpoint.breaker.state),
      el("td", endpoint.inflight, "num"),
      el("td", queueText(endpoint.queue), "num"),
      el(
        "td",
        endpoint.last_probe_latency_ms === null ? "-" : `${endpoint.last_probe_latency_ms} ms`,
        "num",
      ),
      el("td", endpoint.success_rate, "num"),
      el("td", engineText(endpoint.engine), "num"),
      el("td", endpoint.model_count, "num"),
      el("td", endpoint.last_error ?? "", "error"),
      actionsCell(endpoint),
    );
    return row;
  });
  body.replaceChildren(...rows);
}

function renderHeader(status, endpoints) {
  const badge = $("status");
  badge.textContent = status.system.status;
  badge.dataset.status = status.system.status;
  $("version").textContent = status.version;
  $("runtime").textContent = status.runtime;
  $("uptime").textContent = status.system.uptime;
  $("inflight").textContent = String(status.totals.inflight);
  $("updated").textContent = new Date(endpoints.timestamp).toLocaleTimeString();
}

function renderModels(models) {
  const rows = models.models.map((model) => {
    const row = document.createElement("tr");
    row.append(
      el("td", model.id),
      el("td", model.endpoints.join(", ")),
      statusCell(model.available ? "healthy" : "offline"),
    );
    row.lastChild.textContent = model.available ? "yes" : "no";
    return row;
  });
  $("models").tBodies[0].replaceChildren(...rows);
}

function renderCluster(cluster) {
  $("cluster-section").hidden = !cluster.enabled;
  if (!cluster.enabled) return;
  const others = cluster.instances.length;
  $("cluster-summary").textContent =
    `This instance: ${cluster.instance_id}; Redis ${cluster.redis.state}; ${others} other instance${
      others === 1 ? "" : "s"
    }.`;
  const rows = cluster.instances.map((instance) => {
    const row = document.createElement("tr");
    row.dataset.instance = instance.id;
    const seen = instance.endpoints.map((endpoint) =>
      `${endpoint.name}: ${endpoint.status}, ${endpoint.inflight} in flight`
    );
    row.append(
      el("td", instance.id),
      el("td", `${instance.runtime}, olla-ts ${instance.version}`),
      el("td", new Date(instance.last_seen).toLocaleTimeString()),
      el("td", seen.join("; ") || "-"),
    );
    return row;
  });
  $("cluster").tBodies[0].replaceChildren(...rows);
}

function line(points, color) {
  const polyline = document.createElementNS(SVG, "polyline");
  polyline.setAttribute("points", points);
  polyline.setAttribute("stroke", color);
  return polyline;
}

/** Draws `series` ({label, values}) over the samples' time axis in one SVG. */
function chart(id, samples, series) {
  const svg = $(`chart-${id}`);
  const legend = $(`legend-${id}`);
  const max = Math.max(1, ...series.flatMap((s) => s.values.filter((v) => v !== null)));
  const n = samples.length;
  const x = (i) => (n <= 1 ? 300 : (i / (n - 1)) * 300);
  const y = (v) => 98 - (v / max) * 94;
  const axis = document.createElementNS(SVG, "line");
  axis.setAttribute("class", "axis");
  axis.setAttribute("x1", "0");
  axis.setAttribute("x2", "300");
  axis.setAttribute("y1", "98");
  axis.setAttribute("y2", "98");
  const lines = series.map((s, k) =>
    line(
      s.values.map((v, i) => (v === null ? null : `${x(i).toFixed(1)},${y(v).toFixed(1)}`)).filter(
        Boolean,
      ).join(" "),
      COLORS[k % COLORS.length],
    )
  );
  svg.replaceChildren(axis, ...lines);
  legend.replaceChildren(...series.map((s, k) => {
    const last = s.values.at(-1);
    const item = el("span", `${s.label}${last === undefined || last === null ? "" : ` ${last}`}`);
    item.style.setProperty("--swatch", COLORS[k % COLORS.length]);
    return item;
  }));
  legend.append(el("span", `max ${Math.round(max * 100) / 100}`));
}

function renderCharts(timeseries) {
  const samples = timeseries.samples;
  const names = [...new Set(samples.flatMap((sample) => Object.keys(sample.endpoints)))];
  const perEndpoint = (key) =>
    names.map((name) => ({
      label: name,
      values: samples.map((sample) => sample.endpoints[name]?.[key] ?? 0),
    }));
  chart("requests", samples, perEndpoint("requests_per_s"));
  chart("errors", samples, perEndpoint("errors_per_s"));
  chart("ttft", samples, [
    { label: "p50", values: samples.map((s) => s.ttft_p50_ms) },
    { label: "p95", values: samples.map((s) => s.ttft_p95_ms) },
  ]);
  chart("tokens", samples, [
    { label: "tokens/s", values: samples.map((s) => s.tokens_per_s) },
    { label: "in flight", values: samples.map((s) => s.inflight) },
  ]);
}

const seen = new Set();

function addEvent(event) {
  if (seen.has(event.id)) return;
  seen.add(event.id);
  const item = document.createElement("li");
  const time = el("time", new Date(event.at).toLocaleTimeString());
  time.dateTime = new Date(event.at).toISOString();
  item.append(
    time,
    el("span", event.kind, "kind"),
    el("span", event.endpoint ? `${event.endpoint}: ${event.detail}` : event.detail),
  );
  const list = $("events");
  list.prepend(item);
  while (list.children.length > 100) list.lastChild.remove();
}

let refreshing = false;
let again = false;

async function refresh() {
  if (refreshing) {
    again = true;
    return;
  }
  refreshing = true;
  try {
    const [status, endpoints, models, timeseries, cluster] = await Promise.all([
      getJson("/internal/status"),
      getJson("/internal/status/endpoints"),
      getJson("/internal/status/models"),
      getJson("/internal/stats/timeseries"),
      getJson("/internal/cluster"),
    ]);
    renderHeader(status, endpoints);
    renderEndpoints(endpoints);
    renderModels(models);
    renderCharts(timeseries);
    renderCluster(cluster);
    document.body.dataset.loaded = "true";
  } catch (error) {
    $("live").textContent = `refresh failed: ${error.message}`;
  } finally {
    refreshing = false;
    if (again) {
      again = false;
      void refresh();
    }
  }
}

function listen() {
  if (!("EventSource" in globalThis)) {
    $("live").textContent = "polling every 2 s";
    return;
  }
  const source = new EventSource("/internal/events");
  source.addEventListener("open", () => {
    $("live").textContent = "live";
  });
  source.addEventListener("fleet", (message) => {
    addEvent(JSON.parse(message.data));
    void refresh();
  });
  source.addEventListener("error", () => {
    $("live").textContent = "live updates interrupted; polling every 2 s";
  });
}

getJson("/internal/endpoints/actions").then((answer) => {
  actions = answer;
  void refresh();
}, () => {});
void refresh();
setInterval(() => void refresh(), POLL_MS);
listen();
