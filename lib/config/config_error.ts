/**
 * The error a configuration that cannot be used is refused with: one issue per problem,
 * each with its path and, for values from a file, `file:line:column`.
 *
 * @module
 */
import type { Issue } from "../schema/spec.ts";

/** Thrown when the configuration cannot be used; carries one issue per problem. */
export class ConfigError extends TypeError {
  readonly issues: readonly Issue[];

  constructor(source: string, issues: readonly Issue[]) {
    super(
      `Cannot load configuration from ${source}: ${issues.length} problem${
        issues.length === 1 ? "" : "s"
      }\n${issues.map((issue) => `  - ${formatIssue(issue)}`).join("\n")}`,
    );
    this.name = "ConfigError";
    this.issues = issues;
  }
}

/** `file:line:col: path: message`, or without location when unknown. */
export function formatIssue(issue: Issue): string {
  return `${issue.location ? `${issue.location}: ` : ""}${
    issue.path ? `${issue.path}: ` : ""
  }${issue.message}`;
}
