/**
 * The status page at `/internal/ui/` (`/internal/ui` redirects), its live event stream
 * `/internal/events`, and the sampled series `/internal/stats/timeseries` it draws.
 *
 * The page is embedded (ui_assets.ts, generated from ui/), so nothing is read from disk
 * and nothing is fetched from elsewhere: a strict Content-Security-Policy allows only
 * olla-ts's own scripts, styles and connections. Like Olla's dashboard, the page answers
 * only when the client's address is in `dashboard.access_policy.allowed_cidrs` (or it has
 * an admin key) and the `Host` header is an IP literal or in `allowed_hosts` (a DNS
 * rebinding guard); the guard has already applied `server.internal.allowed_cidrs`.
 *
 * The event stream replays the recent events (after `Last-Event-ID` when given), then
 * sends each new one; a comment every 15 s keeps proxies from closing it, and it ends
 * when olla-ts shuts down, so it never holds up a shutdown.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import type { AppEnv } from "../app_env.ts";
import { UI_ASSETS } from "../ui_assets.ts";
import { type Cidr, ipInAny, parseCidr } from "../../cidr.ts";
import type { Config } from "../../config/schema.ts";
import { OllaError } from "../../errors.ts";
import type { EventFeed, FleetEvent } from "../../observability/events.ts";
import type { TimeSeries } from "../../observability/timeseries.ts";

/** Collaborators of the page routes. */
export interface UiRouteDeps {
  /** `server.ui.enabled` and `dashboard.enabled`. */
  enabled: boolean;
  accessPolicy: Config["dashboard"]["access_policy"];
  events: EventFeed;
  timeseries: TimeSeries;
}

/** The page's own security headers (Olla's, with a stricter policy: no inline styles). */
export const PAGE_HEADERS: Readonly<Record<string, string>> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
};

const HEARTBEAT_MS = 15_000;
/**
 * Bytes queued for an events client that has stopped reading (a laptop asleep with the page
 * open keeps its connection for hours) before its stream is ended: the events would
 * otherwise pile up in memory for as long as the connection lasts. A page that comes back
 * reconnects and resumes from the last event it saw.
 */
const MAX_QUEUED_EVENT_BYTES = 1024 * 1024;
const IP_LITERAL_REGEXP = /^(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9a-f:]*:[0-9a-f:.]*)$/i;

/** The `Host` header's name: port and IPv6 brackets removed, lower case. */
function hostName(host: string | undefined): string {
  const value = (host ?? "").trim().toLowerCase();
  if (value.startsWith("[")) return value.slice(1, value.indexOf("]"));
  const colon = value.lastIndexOf(":");
  return colon === -1 || value.indexOf(":") !== colon ? value : value.slice(0, colon);
}

function checkAccess(c: Context<AppEnv>, cidrs: readonly Cidr[], hosts: ReadonlySet<string>): void {
  const host = hostName(c.req.header("host"));
  if (!IP_LITERAL_REGEXP.test(host) && !hosts.has(host)) {
    throw new OllaError(
      403,
      `The status page does not answer host "${host}"; add it to dashboard.access_policy.allowed_hosts`,
      { code: "host_not_allowed", fault: "policy" },
    );
  }
  if (!c.get("principal")?.admin && !ipInAny(c.get("clientIp"), cidrs)) {
    throw new OllaError(
      403,
      "The status page answers only clients in dashboard.access_policy.allowed_cidrs or with an admin key",
      { code: "ui_forbidden", fault: "policy" },
    );
  }
}

function asset(c: Context<AppEnv>, name: string): Response {
  const file = UI_ASSETS[name];
  const headers = {
    ...PAGE_HEADERS,
    "content-type": file.type,
    etag: file.etag,
    "cache-control": name === "index.html" ? "no-cache" : "public, max-age=3600",
  };
  if (c.req.header("if-none-match") === file.etag) {
    return new Response(null, { status: 304, headers });
  }
  return new Response(c.req.method === "HEAD" ? null : file.body, { headers });
}

function sseFrame(event: FleetEvent): string {
  return `id: ${event.id}\nevent: fleet\ndata: ${JSON.stringify(event)}\n\n`;
}

/** `/internal/events`: the recent events, then each new one, until olla-ts stops. */
function eventStream(c: Context<AppEnv>, feed: EventFeed): Response {
  const after = Number(c.req.header("last-event-id") ?? 0) || 0;
  const encoder = new TextEncoder();
  let stop = () => {};
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      const send = (text: string) => {
        try {
          if ((controller.desiredSize ?? 0) < -MAX_QUEUED_EVENT_BYTES) {
            stop();
            controller.error(new Error("the events client stopped reading"));
            return;
          }
          controller.enqueue(encoder.encode(text));
        } catch {
          stop();
        }
      };
      send(`retry: 2000\n\n`);
      for (const event of feed.recent(after)) send(sseFrame(event));
      const unsubscribe = feed.subscribe((event) => send(sseFrame(event)));
      const heartbeat = setInterval(() => send(": keep-alive\n\n"), HEARTBEAT_MS);
      const cancelClose = feed.onClose(() => {
        stop();
        try {
          controller.close();
        } catch {
          // Already closed.
        }
      });
      stop = () => {
        unsubscribe();
        cancelClose();
        clearInterval(heartbeat);
      };
    },
    cancel() {
      stop();
    },
  }, new ByteLengthQueuingStrategy({ highWaterMark: 0 }));
  return new Response(body, {
    headers: {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      "x-accel-buffering": "no",
    },
  });
}

/** The page routes as a sub-app (only `/internal/stats/timeseries` when the page is off). */
export function uiRoutes(deps: UiRouteDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.all("/internal/stats/timeseries", (c) =>
    c.json({
      interval_ms: deps.timeseries.intervalMs,
      capacity: deps.timeseries.capacity,
      samples: deps.timeseries.samples,
    }));
  if (!deps.enabled) return app;
  const cidrs = deps.accessPolicy.allowed_cidrs.map(parseCidr);
  const hosts = new Set(deps.accessPolicy.allowed_hosts.map((host) => host.toLowerCase()));
  app.get("/internal/events", (c) => {
    checkAccess(c, cidrs, hosts);
    return eventStream(c, deps.events);
  });
  app.all("/internal/ui", (c) => {
    checkAccess(c, cidrs, hosts);
    return new Response(null, {
      status: 307,
      headers: { location: "/internal/ui/", ...PAGE_HEADERS },
    });
  });
  app.all("/internal/ui/*", (c) => {
    checkAccess(c, cidrs, hosts);
    if (c.req.method !== "GET" && c.req.method !== "HEAD") {
      return new Response("method not allowed\n", {
        status: 405,
        headers: { allow: "GET, HEAD", ...PAGE_HEADERS },
      });
    }
    const name = c.req.path.slice("/internal/ui/".length) || "index.html";
    if (UI_ASSETS[name]) return asset(c, name);
    // A path that names a file is a 404; anything else is the page (it has one view).
    if (/\.[a-z0-9]+$/i.test(name)) {
      throw new OllaError(404, `The status page has no file "${name}"`, {
        code: "not_found",
        fault: "client",
      });
    }
    return asset(c, "index.html");
  });
  return app;
}
