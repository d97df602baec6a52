/**
 * The floor plan of lib/, checked from the source text: at most 12 leaves at its root, no
 * file over 400 lines, no import cycle (type imports included), imports that only point
 * down the stage order, and one writing module for each field of the request record.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { describe, test } from "node:test";

const ROOT = new URL("../lib/", import.meta.url).pathname;

/** Stage folders in import order: a file may import from its own folder or one listed before it. */
const LAYERS = [
  ".", // the leaves at lib/'s root
  "schema",
  "config",
  "profiles",
  "registry",
  "upstream",
  "health",
  "routing",
  "proxy",
  "translate",
  "observability",
  "server",
  "cluster",
  "startup",
];

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return name.endsWith(".ts") ? [path] : [];
  });
}

const files = sourceFiles(ROOT);
const rel = (path: string) => relative(ROOT, path);
const IMPORT_REGEXP = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s*"(\.[^"]+)"/g;

function importsOf(file: string): string[] {
  const text = readFileSync(file, "utf8");
  return [...text.matchAll(IMPORT_REGEXP)]
    .map((match) => normalize(join(dirname(file), match[1])))
    .filter((target) => target.startsWith(ROOT));
}

/** The stage folder of a lib file: its first path segment, or "." at the root. */
function layerOf(file: string): string {
  const parts = rel(file).split("/");
  return parts.length === 1 ? "." : parts[0];
}

describe("lib/ floor plan", () => {
  test("the root holds at most 12 leaf files and every folder is a known stage", () => {
    const roots = files.filter((file) => layerOf(file) === ".");
    assert.ok(roots.length <= 12, `lib/ root has ${roots.length} files: ${roots.map(rel)}`);
    for (const file of files) {
      assert.ok(LAYERS.includes(layerOf(file)), `${rel(file)} is outside the known stages`);
    }
  });

  test("no lib file is over 400 lines", () => {
    const long = files
      .map((file) => [rel(file), readFileSync(file, "utf8").split("\n").length] as const)
      .filter(([, lines]) => lines > 400);
    assert.deepEqual(long, []);
  });

  test("imports only point down the stage order (or within a stage)", () => {
    const upward: string[] = [];
    for (const file of files) {
      const from = LAYERS.indexOf(layerOf(file));
      for (const target of importsOf(file)) {
        if (LAYERS.indexOf(layerOf(target)) > from) upward.push(`${rel(file)} -> ${rel(target)}`);
      }
    }
    assert.deepEqual(upward, []);
  });

  test("there is no import cycle, type imports included", () => {
    const graph = new Map(files.map((file) => [file, importsOf(file)]));
    const state = new Map<string, "visiting" | "done">();
    const cycles: string[] = [];
    const visit = (file: string, path: string[]) => {
      if (state.get(file) === "done") return;
      if (state.get(file) === "visiting") {
        cycles.push([...path.slice(path.indexOf(file)), file].map(rel).join(" -> "));
        return;
      }
      state.set(file, "visiting");
      for (const next of graph.get(file) ?? []) visit(next, [...path, file]);
      state.set(file, "done");
    };
    for (const file of files) visit(file, []);
    assert.deepEqual(cycles, []);
  });

  test("each field of the request record is written by one module", () => {
    const WRITE_REGEXP =
      /(?:\brecord|get\("record"\))\.(\w+)(?:\.(\w+))?\s*(?:=(?!=)|\+=|-=|\?\?=|\+\+|\.push\()/g;
    const writers = new Map<string, Set<string>>();
    for (const file of files) {
      for (const match of readFileSync(file, "utf8").matchAll(WRITE_REGEXP)) {
        const field = match[1];
        if (!writers.has(field)) writers.set(field, new Set());
        writers.get(field)?.add(rel(file));
      }
    }
    const shared = [...writers].filter(([, modules]) => modules.size > 1)
      .map(([field, modules]) => `${field}: ${[...modules].join(", ")}`);
    assert.deepEqual(shared, []);
    assert.ok(writers.size > 10, "the scan found the record's writers");
  });
});
