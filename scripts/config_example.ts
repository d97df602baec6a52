/**
 * Writes config.example.yaml from the configuration schema (`deno task config:example`).
 *
 * @module
 */
import { renderExample } from "../lib/config/example.ts";

await Deno.writeTextFile(new URL("../config.example.yaml", import.meta.url), renderExample());
