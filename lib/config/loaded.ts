/**
 * What loading a configuration produces besides the configuration itself.
 *
 * @module
 */
import type { Issue, Path } from "../schema/spec.ts";
import type { Config } from "./schema.ts";

/** A configuration ready to run, with what the operator should be told about it. */
export interface LoadedConfig {
  readonly config: Config;
  /** The file read, or `undefined` when built-in defaults were used. */
  readonly source: string | undefined;
  readonly warnings: readonly Issue[];
  /** Keys present in the file that olla-ts accepts but does not act on. */
  readonly unsupported: readonly { path: string; reason: string }[];
  /** `file:line:column` of a value in the file, for problems found after parsing. */
  readonly locate?: (path: Path) => string | undefined;
}
