/*
 * Helpers every generated module starts with (plain ES2020, no imports: the
 * module runs in a bare node:vm context). Set structures are built once at
 * load time from range lists, so the generated text stays small.
 */
export const PREAMBLE = String.raw`
  const ipText = (n) => (n >>> 24) + '.' + ((n >>> 16) & 255) + '.' + ((n >>> 8) & 255) + '.' + (n & 255);
  // A bit per value of a field of at most 16 bits.
  function bitmapOf(size, ranges) {
    const bm = new Uint8Array((size + 7) >>> 3);
    for (let i = 0; i < ranges.length; i += 2) for (let v = ranges[i]; v <= ranges[i + 1]; v++) bm[v >>> 3] |= 1 << (v & 7);
    return bm;
  }
  // Sorted, merged [lo, hi] pairs; binary search for the last lo <= x.
  function inRanges(r, x) {
    let lo = 0, hi = (r.length >>> 1) - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >>> 1;
      if (r[mid << 1] <= x) lo = mid + 1; else hi = mid - 1;
    }
    return hi >= 0 && x <= r[(hi << 1) + 1];
  }
  // A stride-16 prefix structure for large address sets: the top 16 bits pick
  // a bucket that is wholly in (-2), wholly out (-1), or a short range list.
  function trieOf(ranges) {
    const index = new Int32Array(65536).fill(-1);
    const lists = [];
    for (let i = 0; i < ranges.length; i += 2) {
      const lo = ranges[i], hi = ranges[i + 1];
      for (let top = lo >>> 16; top <= hi >>> 16; top++) {
        const bLo = top * 65536, bHi = bLo + 65535;
        if (lo <= bLo && hi >= bHi) { index[top] = -2; continue; }
        if (index[top] === -2) continue;
        if (index[top] === -1) { index[top] = lists.length; lists.push([]); }
        lists[index[top]].push(Math.max(lo, bLo), Math.min(hi, bHi));
      }
    }
    return { index, lists: lists.map((l) => Uint32Array.from(l)) };
  }
  function inTrie(t, x) {
    const k = t.index[x >>> 16];
    return k === -2 || (k >= 0 && inRanges(t.lists[k], x));
  }
  // First-match classifier over a flattened decision tree (layout: classifierInitializer
  // in compiler/codegen/classifier.ts). Returns the matching rule's record offset, or -1.
  function classify(T, ref, v) {
    while ((ref & 3) === 0) {
      const n = ref >>> 2;
      ref = T[n + 3 + ((v[T[n]] >>> T[n + 1]) & T[n + 2])];
    }
    if ((ref & 3) === 2) return ruleMatches(T, ref >>> 2, v) ? ref >>> 2 : -1;
    const leaf = ref >>> 2, end = leaf + 1 + T[leaf];
    for (let i = leaf + 1; i < end; i++) if (ruleMatches(T, T[i], v)) return T[i];
    return -1;
  }
  // Does every test of the rule record at offset rule pass for the values v?
  function ruleMatches(T, rule, v) {
    const tests = T[rule + 2];
    let at = rule + 3;
    for (let t = 0; t < tests; t++) {
      const x = v[T[at]], count = T[at + 1], first = at + 2;
      at = first + 2 * count;
      let ok = false;
      if (count <= 8) {
        for (let k = first; k < at && x >= T[k]; k += 2) if (x <= T[k + 1]) { ok = true; break; }
      } else {
        let lo = 0, hi = count - 1;
        while (lo <= hi) { const mid = (lo + hi) >>> 1; if (T[first + 2 * mid] <= x) lo = mid + 1; else hi = mid - 1; }
        ok = hi >= 0 && x <= T[first + 2 * hi + 1];
      }
      if (!ok) return false;
    }
    return true;
  }
`;
