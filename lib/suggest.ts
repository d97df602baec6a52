/**
 * "Did you mean" suggestions: for misspelt configuration keys and values, and for model
 * names no endpoint serves.
 *
 * @module
 */

/** Levenshtein distance, for "did you mean" suggestions. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost);
    }
    previous = current;
  }
  return previous[b.length];
}

/** The known key closest to `key`, when it is close enough to be a likely typo. */
export function nearestKey(key: string, known: readonly string[]): string | undefined {
  const limit = Math.max(2, Math.floor(key.length / 3));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of known) {
    if (!withinReach(key, candidate, limit)) continue;
    const distance = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [candidate, distance];
  }
  return bestDistance <= limit ? best : undefined;
}

/**
 * Whether `candidate` may lie within `limit` edits of `name`: the distance is at least the
 * difference in length. Checked before the distance itself, which costs the product of
 * the two lengths: a client naming a model of 3 million characters cost 0.45 s of the
 * event loop per request before, and nothing now.
 */
function withinReach(name: string, candidate: string, limit: number): boolean {
  return Math.abs(name.length - candidate.length) <= limit;
}

/**
 * Up to `max` of `known` closest to `name` and close enough to be likely meant (within a
 * third of its length, at least 2 edits; case ignored), closest first.
 */
export function nearestNames(name: string, known: Iterable<string>, max = 3): string[] {
  const limit = Math.max(2, Math.floor(name.length / 3));
  const lower = name.toLowerCase();
  return [...known]
    .filter((candidate) => withinReach(name, candidate, limit))
    .map((candidate) => ({ candidate, distance: editDistance(lower, candidate.toLowerCase()) }))
    .filter(({ distance }) => distance <= limit)
    .sort((a, b) => a.distance - b.distance || a.candidate.localeCompare(b.candidate))
    .slice(0, max)
    .map(({ candidate }) => candidate);
}
