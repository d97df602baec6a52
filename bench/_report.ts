/**
 * Where a benchmark's report goes: its files in bench/results/, and its table quoted in
 * the README between `<!-- <marker> ... -->` and `<!-- /<marker> -->`, re-formatted by
 * `deno fmt` as the README is.
 *
 * @module
 */

const README = new URL("../README.md", import.meta.url).pathname;
const RESULTS = new URL("results/", import.meta.url).pathname;

/**
 * Writes bench/results/`<name>`-latest.{json,md}, or `<name>`-smoke.{json,md} for a smoke
 * run (which CI makes and git ignores): `data` as JSON and `markdown` as it is shown.
 */
export async function writeReport(
  name: string,
  smoke: boolean,
  data: unknown,
  markdown: string,
): Promise<void> {
  await Deno.mkdir(RESULTS, { recursive: true });
  const path = `${RESULTS}${name}-${smoke ? "smoke" : "latest"}`;
  await Deno.writeTextFile(`${path}.json`, JSON.stringify(data, null, 2) + "\n");
  await Deno.writeTextFile(`${path}.md`, markdown.endsWith("\n") ? markdown : `${markdown}\n`);
}

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
