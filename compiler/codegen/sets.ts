/*
 * `in` tests compiled to the structure that fits their size (architecture.md
 * performance rules): a few ranges as comparisons, fields of 16 bits or less
 * as bitmaps, addresses as sorted ranges with binary search, and very large
 * address sets as a stride-16 prefix structure.
 */

const INLINE_MAX = 8;
const BINARY_SEARCH_MAX = 256;

/** Module-level constants the generated functions share. */
export class ConstantPool {
  readonly declarations: string[] = [];
  private readonly seen = new Map<string, string>();

  add(prefix: string, initializer: string): string {
    const existing = this.seen.get(initializer);
    if (existing) return existing;
    const name = `${prefix}${this.declarations.length}`;
    this.declarations.push(`  const ${name} = ${initializer};`);
    this.seen.set(initializer, name);
    return name;
  }
}

function flat(ranges: readonly (readonly [number, number])[]): string {
  return `[${ranges.map(([lo, hi]) => `${lo}, ${hi}`).join(', ')}]`;
}

/** A JS boolean expression: is `x` (a local holding the field) in `ranges`? */
export function membership(x: string, fieldMax: number, ranges: readonly (readonly [number, number])[], pool: ConstantPool): string {
  if (ranges.length === 0) return 'false';
  if (ranges.length === 1 && ranges[0]![0] === 0 && ranges[0]![1] >= fieldMax) return 'true';
  if (ranges.length <= INLINE_MAX) {
    return `(${ranges.map(([lo, hi]) => (lo === hi ? `${x} === ${lo}` : lo === 0 ? `${x} <= ${hi}` : `(${x} >= ${lo} && ${x} <= ${hi})`)).join(' || ')})`;
  }
  if (fieldMax <= 0xffff) {
    const bm = pool.add('BM', `bitmapOf(${fieldMax + 1}, ${flat(ranges)})`);
    return `((${bm}[${x} >>> 3] & (1 << (${x} & 7))) !== 0)`;
  }
  if (ranges.length <= BINARY_SEARCH_MAX) {
    const r = pool.add('RS', `Uint32Array.from(${flat(ranges)})`);
    return `inRanges(${r}, ${x})`;
  }
  const t = pool.add('TR', `trieOf(${flat(ranges)})`);
  return `inTrie(${t}, ${x})`;
}
