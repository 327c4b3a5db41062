import { FIELDS } from '../constants.ts';
import type { IrExpr, IrField, IrStatement } from '../ir.ts';

/*
 * Large rule sets (issue: per-packet cost must grow far slower than rule
 * count). A run of independent rules `if (C) { accept|drop }`, where each C
 * is a conjunction of tests of one field against constants, becomes a
 * decision tree in the HiCuts style: inner nodes cut one field's value space
 * at rule boundaries, leaves hold a few candidate rules in source order, and
 * the first candidate whose tests all pass is the first match - the same
 * answer as evaluating the rules one by one.
 */

export type Ranges = [number, number][];

export interface ClassifiableRule {
  /** Position of the statement in its body. */
  readonly index: number;
  readonly rule: string;
  readonly verdict: 'accept' | 'drop';
  /** Per field: the allowed values (a rule without a test on a field allows all). */
  readonly tests: ReadonlyMap<IrField, Ranges>;
}

const LEAF_MAX = 6;
const MAX_CUTS = 128;
const MAX_DEPTH = 12;

function fieldMax(field: IrField): number {
  return FIELDS.get(field)!.max;
}

function normalize(r: Ranges): Ranges {
  const sorted = [...r].filter(([lo, hi]) => lo <= hi).sort((a, b) => a[0] - b[0]);
  const out: Ranges = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

function complement(r: Ranges, max: number): Ranges {
  const out: Ranges = [];
  let next = 0;
  for (const [lo, hi] of r) {
    if (lo > next) out.push([next, lo - 1]);
    next = hi + 1;
  }
  if (next <= max) out.push([next, max]);
  return out;
}

function intersect(a: Ranges, b: Ranges): Ranges {
  const out: Ranges = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const lo = Math.max(a[i]![0], b[j]![0]);
    const hi = Math.min(a[i]![1], b[j]![1]);
    if (lo <= hi) out.push([lo, hi]);
    if (a[i]![1] < b[j]![1]) i++;
    else j++;
  }
  return out;
}

/** A test of one field as a value set, or undefined when the expression is not of that shape. */
function atom(e: IrExpr): { field: IrField; ranges: Ranges } | 'true' | 'false' | undefined {
  switch (e.kind) {
    case 'const':
      return e.value ? 'true' : 'false';
    case 'in':
      return { field: e.field, ranges: e.ranges.map(([a, b]) => [a, b] as [number, number]) };
    case 'compare': {
      const max = fieldMax(e.field);
      const v = e.value;
      const r: Ranges =
        e.op === '==' ? [[v, v]] : e.op === '!=' ? [[0, v - 1], [v + 1, max]] : e.op === '<' ? [[0, v - 1]] : e.op === '<=' ? [[0, v]] : e.op === '>' ? [[v + 1, max]] : [[v, max]];
      return { field: e.field, ranges: normalize(r.map(([lo, hi]) => [Math.max(0, lo), Math.min(max, hi)])) };
    }
    case 'not': {
      const inner = atom(e.operand);
      if (inner === 'true') return 'false';
      if (inner === 'false') return 'true';
      if (!inner) return undefined;
      return { field: inner.field, ranges: complement(inner.ranges, fieldMax(inner.field)) };
    }
    case 'or': {
      const a = atom(e.left);
      const b = atom(e.right);
      if (!a || !b) return undefined;
      if (a === 'true' || b === 'true') return 'true';
      if (a === 'false') return b;
      if (b === 'false') return a;
      if (a.field !== b.field) return undefined;
      return { field: a.field, ranges: normalize([...a.ranges, ...b.ranges]) };
    }
    default:
      return undefined;
  }
}

/** The conjunction `e` as per-field value sets; undefined when it is not classifiable. */
function conjunction(e: IrExpr, into: Map<IrField, Ranges>): boolean {
  if (e.kind === 'and') return conjunction(e.left, into) && conjunction(e.right, into);
  const a = atom(e);
  if (!a) return false;
  if (a === 'true') return true;
  if (a === 'false') {
    // A rule that can never match: an empty set on any field.
    into.set('ip.version', []);
    return true;
  }
  const prev = into.get(a.field);
  into.set(a.field, prev ? intersect(prev, a.ranges) : a.ranges);
  return true;
}

/** `if (C) { verdict }` with a classifiable C, as a rule; undefined otherwise. */
export function asClassifiable(s: IrStatement, index: number): ClassifiableRule | undefined {
  if (s.kind !== 'if' || s.else !== null || s.then.length !== 1) return undefined;
  const v = s.then[0]!;
  if (v.kind !== 'verdict') return undefined;
  const tests = new Map<IrField, Ranges>();
  if (!conjunction(s.condition, tests)) return undefined;
  return { index, rule: v.rule, verdict: v.verdict, tests };
}

export interface ClassifierTables {
  /** Fields in the order of the value vector passed to `classify`. */
  readonly fields: IrField[];
  readonly nodeField: number[];
  readonly cuts: number[][];
  readonly children: number[][];
  readonly leafRules: number[][];
  /** Per rule (position in the run): [fieldIndex, flat ranges, ...]. */
  readonly ruleTests: [number, number[]][][];
}

export function buildClassifier(rules: readonly ClassifiableRule[]): ClassifierTables {
  const fields = [...new Set(rules.flatMap((r) => [...r.tests.keys()]))];
  const fieldIndex = new Map(fields.map((f, i) => [f, i]));
  const tests: (Ranges | null)[][] = rules.map((r) => fields.map((f) => r.tests.get(f) ?? null));
  const t: ClassifierTables = {
    fields,
    nodeField: [],
    cuts: [],
    children: [],
    leafRules: [],
    ruleTests: rules.map((r) => [...r.tests].map(([f, ranges]) => [fieldIndex.get(f)!, ranges.flat()] as [number, number[]])),
  };
  const leafIds = new Map<string, number>();

  const covers = (r: Ranges | null, lo: number, hi: number) => r === null || r.some(([a, b]) => a <= lo && b >= hi);
  const overlaps = (r: Ranges | null, lo: number, hi: number) => r === null || r.some(([a, b]) => a <= hi && b >= lo);

  const newNode = () => {
    t.nodeField.push(-1);
    t.cuts.push([]);
    t.children.push([]);
    t.leafRules.push([]);
    return t.nodeField.length - 1;
  };
  const leaf = (list: number[]): number => {
    const key = list.join(',');
    const existing = leafIds.get(key);
    if (existing !== undefined) return existing;
    const id = newNode();
    t.leafRules[id] = list;
    leafIds.set(key, id);
    return id;
  };

  const build = (list: number[], region: [number, number][], depth: number): number => {
    // First match: rules after one that covers the whole region can never win in it.
    const full = list.findIndex((r) => tests[r]!.every((rg, f) => covers(rg, region[f]![0], region[f]![1])));
    if (full >= 0) list = list.slice(0, full + 1);
    if (list.length <= LEAF_MAX || depth >= MAX_DEPTH) return leaf(list);
    let best = -1;
    let bestPoints: number[] = [];
    fields.forEach((_, f) => {
      const [lo, hi] = region[f]!;
      const points = new Set<number>();
      for (const r of list) {
        for (const [a, b] of tests[r]![f] ?? []) {
          if (a > lo && a <= hi) points.add(a);
          if (b + 1 > lo && b + 1 <= hi) points.add(b + 1);
        }
      }
      if (points.size > bestPoints.length) {
        best = f;
        bestPoints = [...points].sort((x, y) => x - y);
      }
    });
    if (best < 0) return leaf(list);
    let cuts = bestPoints;
    if (cuts.length > MAX_CUTS) {
      const step = cuts.length / MAX_CUTS;
      cuts = Array.from({ length: MAX_CUTS }, (_, i) => cuts[Math.floor(i * step)]!);
      cuts = [...new Set(cuts)];
    }
    const [lo, hi] = region[best]!;
    const bounds = [lo, ...cuts, hi + 1];
    const sublists: number[][] = [];
    for (let i = 0; i + 1 < bounds.length; i++) {
      const a = bounds[i]!;
      const b = bounds[i + 1]! - 1;
      sublists.push(list.filter((r) => overlaps(tests[r]![best], a, b)));
    }
    if (sublists.every((s) => s.length === list.length)) return leaf(list);
    const node = newNode();
    t.nodeField[node] = best;
    t.cuts[node] = cuts;
    t.children[node] = sublists.map((s, i) => {
      const childRegion = region.map((r, f) => (f === best ? ([bounds[i]!, bounds[i + 1]! - 1] as [number, number]) : r));
      return build(s, childRegion, depth + 1);
    });
    return node;
  };

  const root = newNode(); // reserve id 0 for the root
  const rootRegion = fields.map((f) => [0, fieldMax(f)] as [number, number]);
  const built = build(rules.map((_, i) => i), rootRegion, 0);
  // Make node 0 the root by copying the built root into it.
  t.nodeField[root] = t.nodeField[built]!;
  t.cuts[root] = t.cuts[built]!;
  t.children[root] = t.children[built]!;
  t.leafRules[root] = t.leafRules[built]!;
  return t;
}

/** The tables as a JS initializer for the generated module. */
export function classifierInitializer(t: ClassifierTables): string {
  const arr = (xs: readonly number[]) => `[${xs.join(',')}]`;
  return `{ nodeField: Int32Array.from(${arr(t.nodeField)}), cuts: [${t.cuts.map((c) => `Uint32Array.from(${arr(c)})`).join(',')}], children: [${t.children
    .map((c) => `Int32Array.from(${arr(c)})`)
    .join(',')}], leafRules: [${t.leafRules.map((l) => `Int32Array.from(${arr(l)})`).join(',')}], ruleTests: [${t.ruleTests
    .map((tests) => `[${tests.map(([f, r]) => `${f}, Uint32Array.from(${arr(r)})`).join(', ')}]`)
    .join(',')}] }`;
}
