// deno-lint-ignore-file no-non-null-assertion
/**
 * olla-ts running in the test process on a real socket, built from YAML text by the
 * same `createService` main.ts uses, in front of fake backends.
 */
import { serve } from "./_serve.ts";
import { systemClock } from "../lib/clock.ts";
import { parseConfig } from "../lib/config/load.ts";
import type { Config } from "../lib/config/schema.ts";
import { Logger } from "../lib/log.ts";
import { BUILT_IN_PROFILES } from "../lib/profiles/built_in.ts";
import { type Profile, ProfileSet } from "../lib/profiles/profile.ts";
import { canConnect } from "../lib/startup/runtime_api.ts";
import { createService, type Service } from "../lib/startup/service.ts";

/** A running in-process olla-ts. */
export interface TestOlla {
  readonly url: string;
  readonly service: Service;
  readonly config: Config;
  /** Log lines written so far (JSON objects). */
  readonly logs: Record<string, unknown>[];
  /** Every raw log line, for secret checks. */
  readonly rawLogs: string[];
  close(): Promise<void>;
}

/** Starts olla-ts with `yaml` (endpoints and all) and waits for its first health probes. */
export async function startOlla(
  yaml: string,
  options: {
    profiles?: readonly Profile[];
    waitForHealthy?: boolean;
    env?: Record<string, string>;
  } = {},
): Promise<TestOlla> {
  const profiles = new ProfileSet(options.profiles ?? BUILT_IN_PROFILES);
  const { config } = parseConfig(yaml, {
    env: (name) => options.env?.[name],
    knownTypes: profiles.typeNames,
  });
  const logs: Record<string, unknown>[] = [];
  const rawLogs: string[] = [];
  const logger = new Logger({
    level: "debug",
    format: "json",
    write: (line) => {
      rawLogs.push(line);
      logs.push(JSON.parse(line));
    },
  });
  const service = createService({
    config,
    profiles,
    logger,
    clock: systemClock,
    fetch: globalThis.fetch,
    canConnect,
    runtime: {
      name: "test",
      version: "0",
      memory: () => ({ rss: 1, heapUsed: 1, heapTotal: 1, external: 0 }),
    },
  });
  const server = await serve((request, info) => service.fetch(request, info));
  service.start();
  if (options.waitForHealthy !== false) {
    const deadline = Date.now() + 5_000;
    while (
      service.registry.endpoints.some((e) =>
        e.status === "unknown" || (e.models === undefined && e.status === "healthy")
      ) &&
      Date.now() < deadline
    ) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
  return {
    url: server.url,
    service,
    config,
    logs,
    rawLogs,
    async close() {
      service.stop();
      await server.close();
    },
  };
}

/** An endpoint entry for YAML configs. */
export function endpointYaml(name: string, url: string, extra = ""): string {
  return `      - name: ${name}\n        url: ${url}\n        type: lmdeploy\n        check_interval: 200ms\n        check_timeout: 500ms\n${extra}`;
}

/** A minimal config around the given endpoint entries. */
export function configYaml(endpoints: string[], extra = ""): string {
  return `server:\n  rate_limits:\n    global_requests_per_minute: 0\n    per_ip_requests_per_minute: 0\n  request_logging: true\ndiscovery:\n  static:\n    endpoints:\n${
    endpoints.join("")
  }${extra}`;
}

/** Reads a streamed body chunk by chunk, with the time each chunk arrived. */
export async function readChunks(response: Response): Promise<{ text: string; at: number }[]> {
  const out: { text: string; at: number }[] = [];
  const decoder = new TextDecoder();
  const reader = response.body!.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    out.push({ text: decoder.decode(value, { stream: true }), at: performance.now() });
  }
  return out;
}
