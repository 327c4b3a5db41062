/** Levenshtein distance, for did-you-mean help lines. */
export function editDistance(a: string, b: string): number {
  const prev = new Array<number>(b.length + 1);
  for (let j = 0; j <= b.length; j++) prev[j] = j;
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

/**
 * The candidate closest to `word`, if it is close enough to be a plausible
 * typo (at most a third of the word's length, and at least 1 edit allowed).
 */
export function closest(word: string, candidates: Iterable<string>, ignoreCase = false): string | undefined {
  const w = ignoreCase ? word.toLowerCase() : word;
  let best: string | undefined;
  let bestDistance = Math.max(1, Math.floor(word.length / 3));
  for (const candidate of candidates) {
    const d = editDistance(w, ignoreCase ? candidate.toLowerCase() : candidate);
    if (d > 0 && d <= bestDistance) {
      best = candidate;
      bestDistance = d;
    } else if (d === 0 && ignoreCase && candidate !== word) {
      return candidate;
    }
  }
  return best;
}
