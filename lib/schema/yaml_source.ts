/**
 * Reading a YAML file for the schema: the parsed value, YAML syntax errors with line and
 * column, and a function that finds the line and column of any path in the document, so
 * validation messages can point at the offending value.
 *
 * @module
 */
import { LineCounter, parseDocument } from "yaml";
import type { Issue, Path } from "./spec.ts";

/** A parsed YAML source. */
export interface YamlSource {
  /** The document as plain data (`undefined` for an empty document). */
  readonly value: unknown;
  /** Whether the top level is a mapping (or the document is empty). */
  readonly isMapping: boolean;
  /** YAML syntax errors, each with `file:line:column`. */
  readonly syntaxErrors: readonly Issue[];
  /** `file:line:column` of the value at `path`, when it is in the document. */
  locate(path: Path): string | undefined;
}

/** Parses YAML text; `label` names the file in locations. */
export function readYaml(text: string, label: string): YamlSource {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const at = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return `${label}:${line}:${col}`;
  };
  const syntaxErrors = doc.errors.map((error) => ({
    path: "",
    location: at(error.pos[0]),
    message: `YAML syntax error: ${error.message.split("\n")[0]}`,
  }));
  const contents = doc.contents as { items?: unknown } | null;
  const isMapping = contents === null || (syntaxErrors.length === 0 && !Array.isArray(doc.toJS()) &&
    typeof doc.toJS() === "object");
  return {
    value: syntaxErrors.length > 0 || contents === null ? undefined : doc.toJS(),
    isMapping,
    syntaxErrors,
    locate(path) {
      const node = doc.getIn(path, true) as { range?: [number, number, number] } | undefined;
      return node?.range ? at(node.range[0]) : undefined;
    },
  };
}
