/**
 * A small reader of the Prometheus text exposition format, for engines' `/metrics`: it
 * reads only the series it is asked for and sums each over its label sets (one engine
 * per data-parallel rank, say). Comments, other series, histogram buckets and timestamps
 * are skipped; a line it cannot read is skipped too, never fatal.
 *
 * @module
 */

/** Sums of the wanted series; a name absent from the text is absent from the map. */
export function readSeries(text: string, wanted: ReadonlySet<string>): Map<string, number> {
  const sums = new Map<string, number>();
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf("\n", start);
    if (end === -1) end = text.length;
    const line = text.slice(start, end).trim();
    start = end + 1;
    if (line === "" || line.startsWith("#")) continue;
    const nameEnd = line.search(/[{\s]/);
    if (nameEnd <= 0) continue;
    const name = line.slice(0, nameEnd);
    if (!wanted.has(name)) continue;
    let rest = line.slice(nameEnd);
    if (rest.startsWith("{")) {
      const close = labelsEnd(rest);
      if (close === -1) continue;
      rest = rest.slice(close + 1);
    }
    const value = parseValue(rest.trim().split(/\s+/)[0]);
    if (value === undefined) continue;
    sums.set(name, (sums.get(name) ?? 0) + value);
  }
  return sums;
}

/** Index of the `}` closing a label set that starts at 0, minding quoted values; -1 if none. */
function labelsEnd(text: string): number {
  let quoted = false;
  for (let i = 1; i < text.length; i++) {
    const char = text[i];
    if (quoted) {
      if (char === "\\") i++;
      else if (char === '"') quoted = false;
    } else if (char === '"') {
      quoted = true;
    } else if (char === "}") {
      return i;
    }
  }
  return -1;
}

function parseValue(text: string | undefined): number | undefined {
  if (text === undefined || text === "") return undefined;
  if (text === "+Inf" || text === "Inf") return Infinity;
  if (text === "-Inf") return -Infinity;
  if (text === "NaN") return undefined;
  const value = Number(text);
  return Number.isFinite(value) ? value : undefined;
}
