/**
 * Rendering the status page's source files (`ui/`) into a TypeScript module, so the
 * page is part of the code and the single executable serves it with no file access and
 * no build step at run time. `deno task ui:assets` writes lib/server/ui_assets.ts with it;
 * a test checks that the committed module matches the sources.
 *
 * @module
 */

/** One source file of the page. */
export interface UiSource {
  readonly name: string;
  readonly text: string;
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  html: "text/html; charset=utf-8",
  js: "text/javascript; charset=utf-8",
  css: "text/css; charset=utf-8",
};

/** A strong ETag: the first 16 bytes of the SHA-256, in hex (as Olla's dashboard). */
async function etagOf(text: string): Promise<string> {
  const digest = new Uint8Array(
    await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)),
  );
  return `"${
    [...digest.subarray(0, 16)].map((byte) => byte.toString(16).padStart(2, "0")).join("")
  }"`;
}

/** The module's text. */
export async function renderUiAssets(sources: readonly UiSource[]): Promise<string> {
  const entries = await Promise.all(
    [...sources].sort((a, b) => (a.name < b.name ? -1 : 1)).map(async ({ name, text }) => {
      const type = CONTENT_TYPES[name.slice(name.lastIndexOf(".") + 1)];
      if (!type) throw new TypeError(`ui/${name}: no content type for this extension`);
      return `  ${JSON.stringify(name)}: {\n    type: ${JSON.stringify(type)},\n    etag: ${
        JSON.stringify(await etagOf(text))
      },\n    body: ${JSON.stringify(text)},\n  },\n`;
    }),
  );
  return `// Generated from ui/ by \`deno task ui:assets\` (lib/server/ui_bundle.ts); do not edit.\n` +
    `/** The status page's files, by name. */\n` +
    `export const UI_ASSETS: Readonly<Record<string, { type: string; etag: string; body: string }>> = {\n` +
    `${entries.join("")}};\n`;
}
