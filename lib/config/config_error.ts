/**
 * The error a configuration that cannot be used is refused with: one issue per problem,
 * each with its path and, for values from a file, `file:line:column`.
 *
 * @module
 */
import type { Issue } from "../schema/spec.ts";

/**
 * Thrown when the configuration cannot be used; carries one issue per problem, and the
 * warnings found on the way, so one run shows everything that needs fixing.
 */
export class ConfigError extends TypeError {
  readonly issues: readonly Issue[];
  readonly warnings: readonly Issue[];

  constructor(source: string, issues: readonly Issue[], warnings: readonly Issue[] = []) {
    const lines = issues.map((issue) => `  - ${formatIssue(issue)}`);
    if (warnings.length > 0) {
      lines.push(`and ${warnings.length} warning${warnings.length === 1 ? "" : "s"}:`);
      lines.push(...warnings.map((issue) => `  - ${formatIssue(issue)}`));
    }
    super(
      `Cannot load configuration from ${source}: ${issues.length} problem${
        issues.length === 1 ? "" : "s"
      }\n${lines.join("\n")}`,
    );
    this.name = "ConfigError";
    this.issues = issues;
    this.warnings = warnings;
  }
}

/** `file:line:col: path: message`, or without location when unknown. */
export function formatIssue(issue: Issue): string {
  return `${issue.location ? `${issue.location}: ` : ""}${
    issue.path ? `${issue.path}: ` : ""
  }${issue.message}`;
}
