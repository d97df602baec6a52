/**
 * Hot reload: SIGHUP, `POST /internal/reload` and (with `server.watch_config`) a change
 * of the file re-read the configuration the way startup read it. A valid file is applied
 * while serving (service.ts says what); an invalid one changes nothing, and every
 * problem is logged and returned. Reloads run one at a time, and each is logged and
 * counted in `olla_config_reloads_total{outcome}`.
 *
 * @module
 */
import type { CliOptions } from "./cli.ts";
import { configurationWarnings, loadFailure, loadFromRuntime } from "./configuration.ts";
import type { Runtime } from "./runtime_api.ts";
import type { Service } from "./service.ts";
import { ConfigError, formatIssue } from "../config/config_error.ts";
import type { Logger } from "../log.ts";
import { ProfileError } from "../profiles/loader.ts";
import type { ReloadOutcome } from "../server/routes/fleet_routes.ts";

/** What a reloader needs. */
export interface ReloaderDeps {
  runtime: Runtime;
  cli: CliOptions;
  service: Service;
  logger: Logger;
  /** Loads the configuration (startup's loader by default). */
  load?: typeof loadFromRuntime;
}

/** The problems of a refused file, one line each. */
function problemsOf(error: unknown): string[] {
  if (error instanceof ConfigError || error instanceof ProfileError) {
    return [...error.issues, ...(error instanceof ConfigError ? error.warnings : [])].map(
      formatIssue,
    );
  }
  return [loadFailure(error)];
}

/** The reload function; concurrent calls wait for the one running. */
export function createReloader(deps: ReloaderDeps): () => Promise<ReloadOutcome> {
  const { runtime, cli, service, logger } = deps;
  const load = deps.load ?? loadFromRuntime;
  let running: Promise<unknown> = Promise.resolve();

  async function reloadOnce(): Promise<ReloadOutcome> {
    let loaded;
    try {
      loaded = await load(runtime, cli);
    } catch (error) {
      const problems = problemsOf(error);
      logger.error("configuration reload refused; the running configuration stays", { problems });
      service.countReload("invalid");
      return { ok: false, problems };
    }
    for (const warning of configurationWarnings(loaded)) {
      logger.warn("configuration warning", { detail: warning });
    }
    const report = service.reconfigure(loaded.config, loaded.profiles);
    logger.info("configuration reloaded", {
      file: loaded.source ?? "built-in defaults",
      added: report.endpoints.added,
      removed: report.endpoints.removed,
      changed: report.endpoints.changed,
      restart_needed: report.restartNeeded.length > 0 ? report.restartNeeded : undefined,
    });
    if (report.restartNeeded.length > 0) {
      logger.warn("some changed settings take effect only after a restart", {
        settings: report.restartNeeded,
      });
    }
    service.countReload("applied");
    return {
      ok: true,
      problems: [],
      changes: report.endpoints,
      restartNeeded: report.restartNeeded,
    };
  }

  return () => {
    const next = running.then(reloadOnce, reloadOnce);
    running = next;
    return next;
  };
}

/** Calls `reload` once `quietMs` after the last of a burst of file changes. */
export function debounced(reload: () => unknown, quietMs: number): () => void {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      reload();
    }, quietMs);
  };
}
