/*
 * The byte ranges a TCP connection holds beyond a moving base: on the
 * receive side the out-of-order bytes past RCV.NXT, on the send side the
 * bytes the peer selectively acknowledged past SND.UNA (RFC 2018). Offsets
 * count from the base; when the base moves on, `advance` shifts them.
 *
 * The number of ranges is capped: a peer that scatters tiny segments (or
 * SACK blocks) could otherwise make every segment cost a scan of thousands.
 * An `add` that would need one range too many is refused, and the caller
 * drops what it described; a sender retransmits it, and a SACK block is
 * only advice.
 */

export class RangeSet {
  /** Flat [start0, end0, start1, end1, ...], sorted, disjoint, never touching. */
  #edges: number[] = [];

  constructor(readonly maxRanges: number) {}

  get count(): number {
    return this.#edges.length >>> 1;
  }

  get isEmpty(): boolean {
    return this.#edges.length === 0;
  }

  start(i: number): number {
    return this.#edges[2 * i]!;
  }

  end(i: number): number {
    return this.#edges[2 * i + 1]!;
  }

  /** The end of the last range, 0 when empty. */
  get highest(): number {
    return this.#edges.length === 0 ? 0 : this.#edges[this.#edges.length - 1]!;
  }

  /** Bytes covered. */
  get size(): number {
    let n = 0;
    for (let i = 0; i < this.#edges.length; i += 2) n += this.#edges[i + 1]! - this.#edges[i]!;
    return n;
  }

  /** Adds [start, end), merging what it overlaps or touches; false (and no change) past the cap. */
  add(start: number, end: number): boolean {
    if (!(end > start) || start < 0) return true;
    const e = this.#edges;
    // The first range that ends at or after `start`, and the first that starts after `end`.
    let lo = 0;
    while (lo < e.length && e[lo + 1]! < start) lo += 2;
    let hi = lo;
    while (hi < e.length && e[hi]! <= end) hi += 2;
    if (lo === hi) {
      if (this.count >= this.maxRanges) return false;
      e.splice(lo, 0, start, end);
      return true;
    }
    const merged = [Math.min(start, e[lo]!), Math.max(end, e[hi - 1]!)];
    e.splice(lo, hi - lo, ...merged);
    return true;
  }

  /** Whether [start, end) is covered whole. */
  covers(start: number, end: number): boolean {
    const e = this.#edges;
    for (let i = 0; i < e.length; i += 2) if (e[i]! <= start && end <= e[i + 1]!) return true;
    return false;
  }

  /** The range holding `offset`'s byte, as its index, or -1. */
  indexOf(offset: number): number {
    const e = this.#edges;
    for (let i = 0; i < e.length; i += 2) if (e[i]! <= offset && offset < e[i + 1]!) return i >>> 1;
    return -1;
  }

  /** Moves the base `n` bytes on: what lay before it is gone, the rest counts from the new base. */
  advance(n: number): void {
    if (n <= 0) return;
    const e = this.#edges;
    let drop = 0;
    while (drop < e.length && e[drop + 1]! <= n) drop += 2;
    if (drop > 0) e.splice(0, drop);
    for (let i = 0; i < e.length; i++) e[i] = Math.max(0, e[i]! - n);
  }

  /** The length of a range that starts at the base, removed (and the base moved past it); 0 when there is none. */
  takeFront(): number {
    const e = this.#edges;
    if (e.length === 0 || e[0] !== 0) return 0;
    const n = e[1]!;
    this.advance(n);
    return n;
  }

  clear(): void {
    this.#edges.length = 0;
  }
}
