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

const LEAF_MAX = 4;
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
  /** Per node: the field it cuts, or -1 for a leaf. */
  readonly nodeField: number[];
  /** Per inner node: child index = (value >>> shift) & mask. */
  readonly nodeShift: number[];
  readonly nodeMask: number[];
  readonly children: number[][];
  readonly leafRules: number[][];
  /** Per rule (position in the run): [fieldIndex, flat ranges]. */
  readonly ruleTests: [number, number[]][][];
}

const SPACE_FACTOR = 4;
const ROOT_STRIDE = 16;
const STRIDE = 8;

function fieldBits(field: IrField): number {
  return 32 - Math.clz32(fieldMax(field));
}

/**
 * Builds the tree. Each inner node selects `stride` bits of one field (a
 * multibit trie over chosen bits, HiCuts-like equal cuts), so a lookup costs
 * one shift and one mask per level; the bits chosen are those that split the
 * node's rules best within a space budget. A rule goes to every child its
 * values can reach, so the leaf a packet lands in holds every rule that can
 * match it, in source order.
 */
export function buildClassifier(rules: readonly ClassifiableRule[]): ClassifierTables {
  const fields = [...new Set(rules.flatMap((r) => [...r.tests.keys()]))];
  const fieldIndex = new Map(fields.map((f, i) => [f, i]));
  const tests: (Ranges | null)[][] = rules.map((r) => fields.map((f) => r.tests.get(f) ?? null));
  const t: ClassifierTables = {
    fields,
    nodeField: [],
    nodeShift: [],
    nodeMask: [],
    children: [],
    leafRules: [],
    ruleTests: rules.map((r) => [...r.tests].map(([f, ranges]) => [fieldIndex.get(f)!, ranges.flat()] as [number, number[]])),
  };
  const leafIds = new Map<string, number>();
  const unconstrained = (r: number) => tests[r]!.every((rg, f) => rg === null || (rg.length === 1 && rg[0]![0] === 0 && rg[0]![1] >= fieldMax(fields[f]!)));

  const newNode = () => {
    t.nodeField.push(-1);
    t.nodeShift.push(0);
    t.nodeMask.push(0);
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

  /** Calls `visit(child)` for each child a rule reaches, or returns true when it reaches all. */
  const reach = (r: number, f: number, shift: number, count: number, visit: (child: number) => void): boolean => {
    const ranges = tests[r]![f];
    if (ranges === null) return true;
    const mask = count - 1;
    const seen = new Set<number>();
    for (const [a, b] of ranges) {
      const lo = Math.floor(a / 2 ** shift);
      const hi = Math.floor(b / 2 ** shift);
      if (hi - lo + 1 >= count) return true;
      for (let v = lo; v <= hi; v++) {
        const child = v & mask;
        if (!seen.has(child)) {
          seen.add(child);
          visit(child);
        }
      }
    }
    return false;
  };

  const build = (list: number[], depth: number): number => {
    // First match: nothing after a rule that matches everything can win.
    const always = list.findIndex(unconstrained);
    if (always >= 0) list = list.slice(0, always + 1);
    if (list.length <= LEAF_MAX || depth >= MAX_DEPTH) return leaf(list);
    let best: { f: number; shift: number; count: number; worst: number } | undefined;
    fields.forEach((_, f) => {
      const bits = fieldBits(fields[f]!);
      for (const wanted of [depth === 0 ? ROOT_STRIDE : STRIDE, 4]) {
        const stride = Math.min(wanted, bits);
        const count = 2 ** stride;
        for (let shift = bits - stride; shift >= 0; shift = shift === 0 ? -1 : Math.max(0, shift - 4)) {
          const counts = new Int32Array(count);
          let everywhere = 0;
          let total = 0;
          for (const r of list) {
            if (reach(r, f, shift, count, (c) => (counts[c]!++, total++))) everywhere++;
          }
          total += everywhere * count;
          if (total > SPACE_FACTOR * list.length + count) continue;
          let worst = 0;
          for (let c = 0; c < count; c++) if (counts[c]! > worst) worst = counts[c]!;
          worst += everywhere;
          if (!best || worst < best.worst || (worst === best.worst && count < best.count)) best = { f, shift, count, worst };
        }
      }
    });
    if (!best || best.worst >= list.length) return leaf(list);
    const { f, shift, count } = best;
    const lists: number[][] = Array.from({ length: count }, () => []);
    for (const r of list) {
      if (reach(r, f, shift, count, (c) => lists[c]!.push(r))) for (const l of lists) l.push(r);
    }
    const node = newNode();
    t.nodeField[node] = f;
    t.nodeShift[node] = shift;
    t.nodeMask[node] = count - 1;
    t.children[node] = lists.map((sub) => build(sub, depth + 1));
    return node;
  };

  const root = newNode(); // id 0 is the root
  const built = build(
    rules.map((_, i) => i),
    0,
  );
  t.nodeField[root] = t.nodeField[built]!;
  t.nodeShift[root] = t.nodeShift[built]!;
  t.nodeMask[root] = t.nodeMask[built]!;
  t.children[root] = t.children[built]!;
  t.leafRules[root] = t.leafRules[built]!;
  return t;
}

/**
 * The tables as a JS initializer for the generated module: one Uint32Array
 * that `classify` (preamble.ts) walks. Records are laid out so a lookup
 * touches few cache lines - an inner node's cut and its children together,
 * a leaf's candidate list together, and each rule's tests and ranges in one
 * run of words:
 *
 *   inner node: field, shift, mask, child refs (mask + 1 of them)
 *   leaf:       count, rule record offsets (count of them)
 *   rule:       rule number, verdict (1 accept, 0 drop), test count,
 *               then per test: field, range count, lo, hi, lo, hi, ...
 *
 * A ref is `offset * 4` for an inner node, `offset * 4 + 1` for a leaf and
 * `offset * 4 + 2` for a leaf of exactly one rule, which points at the rule
 * record itself: at 10k rules most leaves hold one rule, and skipping the
 * leaf saves a cache miss per lookup. Returns the initializer and the root's
 * ref.
 */
export function classifierInitializer(
  t: ClassifierTables,
  ruleNumbers: readonly number[],
  verdicts: readonly ('accept' | 'drop')[],
): { init: string; root: number } {
  const isLeaf = (n: number) => t.nodeField[n]! < 0;
  const isSingle = (n: number) => isLeaf(n) && t.leafRules[n]!.length === 1;
  const offsets: number[] = [];
  let size = 0;
  t.nodeField.forEach((_, n) => {
    offsets.push(size);
    if (!isSingle(n)) size += isLeaf(n) ? 1 + t.leafRules[n]!.length : 3 + t.nodeMask[n]! + 1;
  });
  const ruleOffsets: number[] = [];
  for (const tests of t.ruleTests) {
    ruleOffsets.push(size);
    size += 3 + tests.reduce((words, [, flat]) => words + 2 + flat.length, 0);
  }
  const ref = (n: number) => (isSingle(n) ? ruleOffsets[t.leafRules[n]![0]!]! * 4 + 2 : offsets[n]! * 4 + (isLeaf(n) ? 1 : 0));
  const words: number[] = [];
  t.nodeField.forEach((field, n) => {
    if (isSingle(n)) return;
    if (isLeaf(n)) words.push(t.leafRules[n]!.length, ...t.leafRules[n]!.map((r) => ruleOffsets[r]!));
    else words.push(field, t.nodeShift[n]!, t.nodeMask[n]!, ...t.children[n]!.map(ref));
  });
  t.ruleTests.forEach((tests, r) => {
    words.push(ruleNumbers[r]!, verdicts[r] === 'accept' ? 1 : 0, tests.length);
    for (const [field, flat] of tests) words.push(field, flat.length / 2, ...flat);
  });
  return { init: `Uint32Array.from([${words.join(',')}])`, root: ref(0) };
}
