import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RangeSet } from '../../runtime/tcp/range-set.ts';

function ranges(set: RangeSet): [number, number][] {
  return Array.from({ length: set.count }, (_, i) => [set.start(i), set.end(i)]);
}

describe('TCP range set', () => {
  it('merges ranges that overlap or touch, and keeps the others apart in order', () => {
    const set = new RangeSet(8);
    set.add(10, 20);
    set.add(30, 40);
    set.add(0, 5);
    expect(ranges(set)).toEqual([[0, 5], [10, 20], [30, 40]]);
    set.add(20, 25);
    set.add(15, 32);
    expect(ranges(set)).toEqual([[0, 5], [10, 40]]);
    expect(set.size).toBe(35);
    expect(set.highest).toBe(40);
  });

  it('refuses a range that would be one too many, changing nothing, but still merges into existing ones', () => {
    const set = new RangeSet(2);
    expect(set.add(0, 1)).toBe(true);
    expect(set.add(5, 6)).toBe(true);
    expect(set.add(10, 11)).toBe(false);
    expect(ranges(set)).toEqual([[0, 1], [5, 6]]);
    expect(set.add(1, 5)).toBe(true);
    expect(ranges(set)).toEqual([[0, 6]]);
  });

  it('moves its base on: ranges before it go, one across it is cut, the rest count from it', () => {
    const set = new RangeSet(8);
    set.add(2, 4);
    set.add(6, 10);
    set.add(12, 14);
    set.advance(8);
    expect(ranges(set)).toEqual([[0, 2], [4, 6]]);
  });

  it('takes a range that starts at the base, moving the base past it', () => {
    const set = new RangeSet(8);
    set.add(3, 6);
    expect(set.takeFront()).toBe(0);
    set.add(0, 3);
    set.add(8, 9);
    expect(set.takeFront()).toBe(6);
    expect(ranges(set)).toEqual([[2, 3]]);
  });

  it('ignores empty and negative ranges', () => {
    const set = new RangeSet(8);
    set.add(5, 5);
    set.add(7, 3);
    set.add(-2, 4);
    expect(set.isEmpty).toBe(true);
  });

  it('covers exactly the bytes a naive set of bytes holds, whatever is added and advanced', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('add' as const), start: fc.integer({ min: 0, max: 60 }), len: fc.integer({ min: 0, max: 12 }) }),
      fc.record({ kind: fc.constant('advance' as const), n: fc.integer({ min: 0, max: 20 }) }),
      fc.record({ kind: fc.constant('front' as const) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 60 }), fc.integer({ min: 1, max: 6 }), (ops, cap) => {
        const set = new RangeSet(cap);
        let model = new Set<number>();
        const shift = (n: number) => (model = new Set([...model].filter((b) => b >= n).map((b) => b - n)));
        for (const o of ops) {
          if (o.kind === 'add') {
            if (set.add(o.start, o.start + o.len)) for (let b = o.start; b < o.start + o.len; b++) model.add(b);
          } else if (o.kind === 'advance') {
            set.advance(o.n);
            shift(o.n);
          } else {
            let run = 0;
            while (model.has(run)) run++;
            expect(set.takeFront()).toBe(run);
            shift(run);
          }
          const bytes = ranges(set).flatMap(([s, e]) => Array.from({ length: e - s }, (_, i) => s + i));
          expect(bytes).toEqual([...model].sort((a, b) => a - b));
          expect(set.count).toBeLessThanOrEqual(cap);
          // Disjoint and not touching: a merge was never missed.
          for (let i = 1; i < set.count; i++) expect(set.start(i)).toBeGreaterThan(set.end(i - 1));
        }
      }),
    );
  });
});
