/**
 * Quoting a benchmark's table in the README, between `<!-- <marker> ... -->` and
 * `<!-- /<marker> -->`, re-formatted by `deno fmt` as the README is.
 *
 * @module
 */

const README = new URL("../README.md", import.meta.url).pathname;

/** Replaces what stands between the marker's comments with `table`. */
export async function quoteInReadme(marker: string, table: string): Promise<void> {
  const readme = await Deno.readTextFile(README);
  const start = readme.indexOf(`<!-- ${marker}`);
  const end = readme.indexOf(`<!-- /${marker} -->`);
  if (start === -1 || end === -1) return;
  const opening = readme.slice(start, readme.indexOf("-->", start) + 3);
  await Deno.writeTextFile(
    README,
    `${readme.slice(0, start)}${opening}\n\n${table.trim()}\n\n${readme.slice(end)}`,
  );
  await new Deno.Command(Deno.execPath(), { args: ["fmt", README], stderr: "null" }).output();
}
