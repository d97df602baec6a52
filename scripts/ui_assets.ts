/**
 * Writes lib/server/ui_assets.ts from the status page's sources in ui/
 * (`deno task ui:assets`).
 *
 * @module
 */
import { renderUiAssets } from "../lib/server/ui_bundle.ts";

const dir = new URL("../ui/", import.meta.url);
const sources = [];
for await (const entry of Deno.readDir(dir)) {
  if (entry.isFile) {
    sources.push({ name: entry.name, text: await Deno.readTextFile(new URL(entry.name, dir)) });
  }
}
await Deno.writeTextFile(
  new URL("../lib/server/ui_assets.ts", import.meta.url),
  await renderUiAssets(sources),
);
