/**
 * What an operator may do to one endpoint from the status page (or with curl):
 * `POST /internal/endpoints/{name}/{drain,undrain,sleep,wake}`. Allowed only with
 * `proxy.allow_management_routes`, and with an admin key whenever `server.auth` is on;
 * the guard has already limited `/internal/*` to `server.internal.allowed_cidrs`. Every
 * action is logged and shown in the page's event list.
 *
 * - drain / undrain: the endpoint finishes what it serves and takes nothing new, keeping
 *   its name, models and probes (Registry.hold), until undrained.
 * - sleep / wake: LMDeploy's `POST /sleep?level=1` and `POST /wakeup` on that endpoint,
 *   with its credentials, then a probe so the page shows the new state at once.
 *
 * `GET /internal/endpoints/actions` tells the page whether to offer them.
 *
 * @module
 */
import { type Context, Hono } from "hono";
import type { AppEnv } from "../app_env.ts";
import type { Clock } from "../../clock.ts";
import { OllaError } from "../../errors.ts";
import type { Logger } from "../../log.ts";
import type { EventFeed } from "../../observability/events.ts";
import type { Registry } from "../../registry/registry.ts";
import { postEngineControl } from "../../upstream/engine_control.ts";

/** Collaborators of the action routes. */
export interface EndpointActionDeps {
  registry: Registry;
  logger: Logger;
  events: EventFeed;
  clock: Clock;
  fetch: typeof fetch;
  /** Probes an endpoint now, so its new state shows at once. */
  probeNow: (name: string) => Promise<unknown>;
  /** `proxy.allow_management_routes`. */
  allowed: boolean;
  /** `server.auth.enabled`: an admin key is then required. */
  authEnabled: boolean;
}

const ACTIONS = ["drain", "undrain", "sleep", "wake"] as const;
type Action = (typeof ACTIONS)[number];
const ENGINE_CALL_TIMEOUT_MS = 30_000;

function checkAllowed(c: Context<AppEnv>, deps: EndpointActionDeps): void {
  if (!deps.allowed) {
    throw new OllaError(
      403,
      "Endpoint actions are disabled; set proxy.allow_management_routes: true to allow them",
      { code: "management_disabled", fault: "policy" },
    );
  }
  if (deps.authEnabled && !c.get("principal")?.admin) {
    throw new OllaError(403, "Endpoint actions need an admin key (server.auth.keys[].admin)", {
      code: "admin_key_required",
      fault: "policy",
    });
  }
}

/** Calls LMDeploy's sleep or wake-up route on the endpoint. */
async function engineCall(deps: EndpointActionDeps, name: string, action: "sleep" | "wake") {
  const endpoint = deps.registry.get(name);
  if (!endpoint) return;
  if (endpoint.profile.name !== "lmdeploy") {
    throw new OllaError(400, `Endpoint "${name}" is ${endpoint.type}; only LMDeploy sleeps`, {
      code: "sleep_unsupported",
      fault: "client",
    });
  }
  const path = action === "sleep" ? "/sleep?level=1" : "/wakeup";
  const status = await postEngineControl(endpoint, path, {
    fetch: deps.fetch,
    clock: deps.clock,
    timeoutMs: ENGINE_CALL_TIMEOUT_MS,
    timeoutError: () => new Error(`${path} took longer than ${ENGINE_CALL_TIMEOUT_MS} ms`),
  }).catch((error) => {
    throw new OllaError(502, `Endpoint "${name}" did not take ${path}: ${String(error)}`, {
      code: "upstream_unreachable",
      fault: "upstream",
    });
  });
  if (status >= 300) {
    throw new OllaError(502, `Endpoint "${name}" answered ${status} to ${path}`, {
      code: "upstream_error",
      fault: "upstream",
    });
  }
  await deps.probeNow(name).catch(() => {});
}

/** The action routes as a sub-app. */
export function endpointActionRoutes(deps: EndpointActionDeps): Hono<AppEnv> {
  return new Hono<AppEnv>()
    .get(
      "/internal/endpoints/actions",
      (c) =>
        c.json({ enabled: deps.allowed, admin_key_required: deps.authEnabled, actions: ACTIONS }),
    )
    .post("/internal/endpoints/:name/:action", async (c) => {
      checkAllowed(c, deps);
      const name = c.req.param("name");
      const action = c.req.param("action") as Action;
      if (!ACTIONS.includes(action)) {
        throw new OllaError(404, `Unknown action "${action}"; one of: ${ACTIONS.join(", ")}`, {
          code: "route_not_found",
          fault: "client",
        });
      }
      if (!deps.registry.get(name)) {
        throw new OllaError(404, `No endpoint named "${name}"`, {
          code: "endpoint_not_found",
          fault: "client",
        });
      }
      if (action === "drain" || action === "undrain") {
        deps.registry.hold(name, action === "drain");
      } else {
        await engineCall(deps, name, action);
      }
      const by = c.get("principal")?.name ?? c.get("clientIp");
      deps.logger.info("endpoint action", { endpoint: name, action, by });
      deps.events.push("operator", `${action} (by ${by})`, name);
      const endpoint = deps.registry.get(name);
      return c.json({
        endpoint: name,
        action,
        status: endpoint?.status,
        held: endpoint?.held ?? false,
      });
    });
}
