/**
 * Changing the fleet over HTTP: LMDeploy proxy_server's node API (`POST /nodes/add`,
 * `POST /nodes/remove`, `GET /nodes/status`, `POST /nodes/terminate`,
 * `GET /nodes/terminate_all`, with its bodies, answers and status codes), present while
 * `discovery.registration.enabled` is on; and `POST /internal/reload`.
 *
 * The guard admits these only from `server.internal.allowed_cidrs` or with an admin key
 * (LMDeploy sends no credentials); terminating nodes also needs
 * `proxy.allow_management_routes`.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import type { AppEnv } from "../app_env.ts";
import { OllaError } from "../../errors.ts";

/** The registered-node table (startup/registration.ts). */
export interface NodeTable {
  readonly enabled: boolean;
  add(body: unknown, peer: string): string;
  remove(body: unknown): string;
  status(): Record<string, unknown>;
  terminate(body: unknown): Promise<string>;
  terminateAll(): Promise<string>;
}

/** What a reload did. */
export interface ReloadOutcome {
  readonly ok: boolean;
  /** Every problem of a file that was refused (nothing changed then). */
  readonly problems: readonly string[];
  readonly changes?: unknown;
  /** Settings that changed but need a restart to take effect. */
  readonly restartNeeded?: readonly string[];
}

/** Collaborators of the fleet routes. */
export interface FleetRouteDeps {
  nodes: NodeTable;
  /** Re-reads the configuration file (SIGHUP does the same). */
  reload: () => Promise<ReloadOutcome>;
  /** `proxy.allow_management_routes`. */
  allowManagement: boolean;
}

const UNSUPPORTED_MEDIA = {
  detail: ["Unsupported Media Type: Only 'application/json' is allowed"],
};

/** The JSON body, or a 422 answer in LMDeploy's shape. */
async function jsonBody(c: Context<AppEnv>): Promise<{ body?: unknown; refusal?: Response }> {
  if (!(c.req.header("content-type") ?? "").startsWith("application/json")) {
    return { refusal: c.json(UNSUPPORTED_MEDIA, 422) };
  }
  try {
    return { body: await c.req.json() };
  } catch {
    return {
      refusal: c.json({
        detail: [{ type: "json_invalid", loc: ["body"], msg: "JSON decode error" }],
      }, 422),
    };
  }
}

function managementGate(deps: FleetRouteDeps): void {
  if (!deps.allowManagement) {
    throw new OllaError(403, "Terminating nodes needs proxy.allow_management_routes: true", {
      code: "management_disabled",
      fault: "policy",
    });
  }
}

/** The node and reload routes as a sub-app. */
export function fleetRoutes(deps: FleetRouteDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.post("/internal/reload", async (c) => {
    const outcome = await deps.reload();
    return c.json(outcome, outcome.ok ? 200 : 400);
  });
  if (!deps.nodes.enabled) return app;
  app.post("/nodes/add", async (c) => {
    const { body, refusal } = await jsonBody(c);
    return refusal ?? c.json(deps.nodes.add(body, c.get("clientIp")));
  });
  app.post("/nodes/remove", async (c) => {
    const { body, refusal } = await jsonBody(c);
    return refusal ?? c.json(deps.nodes.remove(body));
  });
  app.get("/nodes/status", (c) => c.json(deps.nodes.status()));
  app.post("/nodes/terminate", async (c) => {
    managementGate(deps);
    const { body, refusal } = await jsonBody(c);
    return refusal ?? c.json(await deps.nodes.terminate(body));
  });
  app.get("/nodes/terminate_all", async (c) => {
    managementGate(deps);
    if (!(c.req.header("content-type") ?? "").startsWith("application/json")) {
      return c.json(UNSUPPORTED_MEDIA, 422);
    }
    return c.json(await deps.nodes.terminateAll());
  });
  return app;
}
