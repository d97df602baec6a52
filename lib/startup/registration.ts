/**
 * LMDeploy's node registration (`lmdeploy serve api_server --proxy-url`), as
 * `lmdeploy serve proxy` answers it: nodes add and remove themselves, and their table can
 * be read and terminated. A registered node becomes an endpoint (source `registered`) with
 * `discovery.registration.defaults`, named after its URL; the models it declares seed its
 * model list until discovery has read it, its `speed` is its weight, and its `role` is
 * kept for `/nodes/status`.
 *
 * `add` returns at once and the node is probed in the background: LMDeploy registers from
 * its startup hook before its own server answers, so a synchronous probe would deadlock.
 * A node that registers as `http://0.0.0.0:23333` (LMDeploy's default `--server-name`) is
 * recorded under the address it registered from, which is where it can be reached.
 *
 * With `state_file`, the table is kept in LMDeploy's `proxy_config.json` format (a URL ->
 * status JSON map), written atomically after each change and read at startup; a file
 * that cannot be read is reported and ignored.
 *
 * @module
 */
import type { Fleet } from "./fleet.ts";
import type { NodeChange, SharedNodes, SharedNodesListener } from "../cluster/shared_nodes.ts";
import { nameFromUrl } from "../config/endpoints.ts";
import type { Config } from "../config/schema.ts";
import type { EndpointConfig } from "../config/schema_endpoint.ts";
import type { Logger } from "../log.ts";
import type { EndpointView } from "../registry/endpoint.ts";
import type { Registry } from "../registry/registry.ts";

/** Where the node table is kept (`discovery.registration.state_file`). */
export interface RegistrationStore {
  /** The file's text, or `undefined` when there is none yet. */
  load(): Promise<string | undefined>;
  /** Replaces the file's content atomically. */
  save(text: string): Promise<void>;
}

/** A node's status as LMDeploy's proxy shows it. */
export interface NodeStatus {
  role: number;
  models: string[];
  unfinished: number;
  latency: number[];
  speed: number | null;
}

/** Collaborators of {@linkcode NodeRegistration}. */
export interface NodeRegistrationDeps {
  fleet: Fleet;
  registry: Registry;
  settings: Config["discovery"]["registration"];
  logger: Logger;
  fetch: typeof fetch;
  store: RegistrationStore | undefined;
  /** The cluster's shared table (`cluster.share.registrations`). */
  shared?: SharedNodes;
}

/** LMDeploy's answers, word for word. */
export const NODE_ANSWERS = {
  added: "Added successfully",
  badUrl: "Failed to add, please check the input url.",
  removed: "Deleted successfully",
  terminated: "Terminated successfully",
  allTerminated: "All nodes terminated successfully",
  allFailed: "Failed to terminate all nodes",
  failed: (url: string) => `Failed to terminate node ${url}`,
} as const;

interface Declared {
  role: number;
  speed: number | null;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/**
 * The registered nodes; one owner of their table. With a cluster, each change made here
 * is shared, and the other instances' changes come back through the same add and remove.
 */
export class NodeRegistration implements SharedNodesListener {
  readonly #deps: NodeRegistrationDeps;
  /** URL -> what the node declared that olla-ts does not keep elsewhere. */
  readonly #declared = new Map<string, Declared>();

  constructor(deps: NodeRegistrationDeps) {
    this.#deps = deps;
  }

  get enabled(): boolean {
    return this.#deps.settings.enabled;
  }

  /** The registered endpoint with this URL. */
  #find(url: string): EndpointView | undefined {
    return this.#deps.registry.endpoints.find((endpoint) =>
      endpoint.source === "registered" && !endpoint.draining && endpoint.config.url === url
    );
  }

  /**
   * Registers a node (LMDeploy's `Node` body); idempotent on the URL. `peer` is the
   * address the request came from.
   */
  add(body: unknown, peer: string, share = true): string {
    if (!isObject(body) || typeof body.url !== "string") return NODE_ANSWERS.badUrl;
    let url: URL;
    try {
      url = new URL(body.url);
    } catch {
      return NODE_ANSWERS.badUrl;
    }
    if (url.protocol !== "http:" && url.protocol !== "https:") return NODE_ANSWERS.badUrl;
    if ((url.hostname === "0.0.0.0" || url.hostname === "[::]") && peer) {
      url.hostname = peer.includes(":") ? `[${peer}]` : peer;
    }
    const href = url.href.replace(/\/+$/, "");
    const status = isObject(body.status) ? body.status : {};
    const models = Array.isArray(status.models)
      ? status.models.filter((model): model is string => typeof model === "string")
      : [];
    const speed = typeof status.speed === "number" && status.speed > 0 ? status.speed : null;
    const role = typeof status.role === "number" ? status.role : 1;
    this.#declared.set(href, { role, speed });
    const existing = this.#find(href);
    const config = this.#configFor(href, speed, existing?.name);
    if (existing) {
      void this.#deps.fleet.update(config, "registered");
      if (models.length > 0) this.#deps.registry.setModels(existing.name, seedCards(models));
    } else {
      try {
        this.#deps.fleet.add(config, "registered", models);
      } catch (error) {
        this.#deps.logger.warn("node registration refused", { url: href, error: String(error) });
        return NODE_ANSWERS.badUrl;
      }
    }
    this.#deps.logger.info("node registered", {
      url: href,
      models,
      role,
      ...(share ? {} : { via: "cluster" }),
    });
    void this.#save();
    if (share) this.#deps.shared?.saved(href, this.#statusJson(href));
    return NODE_ANSWERS.added;
  }

  /** Removes a node (draining it); "Deleted successfully" even for an unknown URL, as LMDeploy. */
  remove(body: unknown, share = true): string {
    const url = isObject(body) && typeof body.url === "string" ? body.url.replace(/\/+$/, "") : "";
    const endpoint = this.#find(url);
    if (endpoint) {
      void this.#deps.fleet.remove(endpoint.name);
      this.#declared.delete(url);
      void this.#save();
    }
    if (share) this.#deps.shared?.removed(url);
    return NODE_ANSWERS.removed;
  }

  /** Another instance's change. */
  applyChange(change: NodeChange): void {
    if (change.op === "remove") {
      this.remove({ url: change.url }, false);
    } else {
      this.add({ url: change.url, status: parseStatus(change.status) }, "", false);
    }
  }

  /** The cluster's whole table: adds what is missing here, removes what it no longer has. */
  applyTable(table: Readonly<Record<string, string>>, removeMissing: boolean): void {
    for (const [url, status] of Object.entries(table)) {
      if (!this.#find(url)) this.add({ url, status: parseStatus(status) }, "", false);
    }
    if (!removeMissing) return;
    for (const endpoint of this.#deps.registry.endpoints) {
      const url = endpoint.config.url;
      if (
        endpoint.source === "registered" && !endpoint.draining && !(url in table) &&
        !this.#deps.shared?.isPending(url)
      ) {
        this.remove({ url }, false);
      }
    }
  }

  /** LMDeploy's `/nodes/status`: URL -> status, for registered and configured endpoints. */
  status(): Record<string, NodeStatus> {
    const out: Record<string, NodeStatus> = {};
    for (const endpoint of this.#deps.registry.endpoints) {
      if (endpoint.draining) continue;
      const declared = this.#declared.get(endpoint.config.url);
      out[endpoint.config.url] = {
        role: declared?.role ?? 1,
        models: [...(endpoint.models?.keys() ?? [])],
        unfinished: endpoint.inflight,
        latency: endpoint.recentLatenciesMs.map((ms) => Math.round(ms) / 1000),
        speed: declared?.speed ?? null,
      };
    }
    return out;
  }

  /** Removes a node and asks it to shut down (`GET <url>/terminate`). */
  async terminate(body: unknown): Promise<string> {
    const url = isObject(body) && typeof body.url === "string" ? body.url.replace(/\/+$/, "") : "";
    const endpoint = this.#find(url);
    if (!endpoint) return NODE_ANSWERS.failed(url);
    this.remove({ url });
    return await this.#terminateAt(endpoint) ? NODE_ANSWERS.terminated : NODE_ANSWERS.failed(url);
  }

  /** Terminates every registered node. */
  async terminateAll(): Promise<string> {
    const nodes = this.#deps.registry.endpoints.filter((e) =>
      e.source === "registered" && !e.draining
    );
    const results = await Promise.all(nodes.map(async (endpoint) => {
      this.remove({ url: endpoint.config.url });
      return await this.#terminateAt(endpoint);
    }));
    return results.every(Boolean) ? NODE_ANSWERS.allTerminated : NODE_ANSWERS.allFailed;
  }

  /** Re-registers the nodes of the state file (at startup). */
  async restore(): Promise<void> {
    const { store, logger } = this.#deps;
    if (!store || !this.enabled) return;
    let text: string | undefined;
    try {
      text = await store.load();
    } catch (error) {
      logger.warn("registration state file cannot be read; starting without it", {
        error: String(error),
      });
      return;
    }
    if (text === undefined || text.trim() === "") return;
    let table: unknown;
    try {
      table = JSON.parse(text);
      if (!isObject(table)) throw new TypeError("expected an object of url -> status");
    } catch (error) {
      logger.warn("registration state file is not valid; starting without it", {
        error: String(error),
      });
      return;
    }
    for (const [url, value] of Object.entries(table)) {
      // LMDeploy writes each status as a JSON string inside the JSON.
      this.add({ url, status: typeof value === "string" ? parseStatus(value) : value }, "");
    }
    logger.info("registered nodes restored", { count: Object.keys(table).length });
  }

  async #terminateAt(endpoint: EndpointView): Promise<boolean> {
    try {
      const response = await this.#deps.fetch(`${endpoint.config.url}/terminate`, {
        headers: [...endpoint.outboundHeaders] as [string, string][],
        redirect: "manual",
        signal: AbortSignal.timeout(10_000),
      });
      await response.body?.cancel();
      return response.ok;
    } catch {
      return false;
    }
  }

  /** The endpoint settings of a node: the configured defaults, its URL, name and speed. */
  #configFor(url: string, speed: number | null, name?: string): EndpointConfig {
    // The defaults are every endpoint field but these two (schema_endpoint.ts).
    return {
      ...this.#deps.settings.defaults,
      url,
      name: name ?? nameFromUrl(url),
      ...(speed === null ? {} : { weight: speed }),
    } as EndpointConfig;
  }

  /** The registered nodes' statuses as the cluster's table keeps them. */
  localTable(): Record<string, string> {
    const table: Record<string, string> = {};
    for (const [url, status] of Object.entries(this.status())) {
      if (this.#find(url)) table[url] = this.#statusJson(url, status);
    }
    return table;
  }

  /** A node's status as kept in the state file and the cluster's table. */
  #statusJson(url: string, status = this.status()[url]): string {
    return JSON.stringify({ ...status, unfinished: 0 });
  }

  /** Writes the table in LMDeploy's format (each status a JSON string), atomically. */
  async #save(): Promise<void> {
    const { store, logger } = this.#deps;
    if (!store) return;
    try {
      await store.save(`${JSON.stringify(this.localTable(), null, 2)}\n`);
    } catch (error) {
      logger.warn("registration state file cannot be written", { error: String(error) });
    }
  }
}

/** A status JSON string, `{}` when it is not valid JSON. */
function parseStatus(text: string | undefined): unknown {
  try {
    return JSON.parse(text ?? "{}");
  } catch {
    return {};
  }
}

function seedCards(models: readonly string[]) {
  return models.map((id) => ({ id, raw: { id, object: "model" } }));
}
