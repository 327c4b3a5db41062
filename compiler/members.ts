import type * as A from '../grammar/ast.ts';
import type { Span } from '../grammar/span.ts';
import { nameText } from '../grammar/format.ts';
import { diagnostic, type Diagnostic } from './diagnostics/diagnostic.ts';
import type { DiagnosticCode } from './diagnostics/codes.ts';
import type { Element, Namespace } from './namespace.ts';

/*
 * Member trees (nacl-language.md 4.3 Recommended, 5.4): every element's
 * literal object plus every dotted assignment to it, merged into one tree.
 * Assignments never overwrite, are applied shortest path first (source order
 * among equals), and every intermediate step must already exist.
 */

export interface MEntry {
  /** The key as written. */
  readonly key: string;
  /** The key in the literal, or the whole dotted target of an assignment. */
  readonly keySpan: Span;
  readonly value: MNode;
  /** The pair or the assignment. */
  readonly span: Span;
  readonly assignment: A.Assignment | null;
}

export interface MObject {
  readonly kind: 'object';
  /** Keyed by the key, lower-cased for typed elements. */
  readonly entries: Map<string, MEntry>;
  readonly span: Span;
  /** When this object is an element's own copy of a named untyped object (5.4 rule 4). */
  readonly copiedFrom?: string;
}

export interface MLeaf {
  readonly kind: 'leaf';
  readonly value: A.Value;
}

export type MNode = MObject | MLeaf;

/** How one element type takes duplicate keys and assignments. */
export interface MemberPolicy {
  readonly caseInsensitive: boolean;
  /** Code for a key written twice in one literal object, by depth (1 = top level). */
  duplicateKeyCode(depth: number, key: string): DiagnosticCode;
  /**
   * Checks the shape of a dotted assignment (segments after the element
   * name) before it is applied; returns a diagnostic to reject it.
   */
  checkShape(assignment: A.Assignment, path: readonly A.Identifier[], tree: MObject): Diagnostic | null;
  /** Code and message for assigning a member that is already set. */
  alreadySet(path: readonly A.Identifier[], assignment: A.Assignment): { code: DiagnosticCode; message: string };
  /** Whether an intermediate step may be the name of an untyped object (its copy is extended). */
  copyAllowedAt(path: readonly A.Identifier[]): boolean;
}

export function keyOf(key: string, policy: MemberPolicy): string {
  return policy.caseInsensitive ? key.toLowerCase() : key;
}

/** Builds a tree from a literal object, reporting duplicate keys. */
export function treeOf(object: A.ObjectLiteral, policy: MemberPolicy, diagnostics: Diagnostic[], depth = 1): MObject {
  const entries = new Map<string, MEntry>();
  for (const pair of object.pairs) {
    const k = keyOf(pair.key.text, policy);
    const first = entries.get(k);
    if (first) {
      const code = policy.duplicateKeyCode(depth, k);
      diagnostics.push(
        diagnostic(code, pair.key.span, duplicateMessage(code, pair.key.text), {
          related: [{ span: first.keySpan, message: 'first set here' }],
        }),
      );
      continue;
    }
    entries.set(k, {
      key: pair.key.text,
      keySpan: pair.key.span,
      value: nodeOf(pair.value, policy, diagnostics, depth + 1),
      span: pair.span,
      assignment: null,
    });
  }
  return { kind: 'object', entries, span: object.span };
}

function duplicateMessage(code: DiagnosticCode, key: string): string {
  switch (code) {
    case 'E502':
      return `Iface member ${key} has already been set`;
    case 'E523':
      return `Route ${key} has already been set`;
    case 'E527':
      return `Member ${key} has already been set for this route`;
    case 'E522':
      return `Gateway member ${key} has already been set`;
    default:
      return `Member ${key} has already been set in this object`;
  }
}

function nodeOf(value: A.Value, policy: MemberPolicy, diagnostics: Diagnostic[], depth: number): MNode {
  return value.kind === 'Object' ? treeOf(value, policy, diagnostics, depth) : { kind: 'leaf', value };
}

function copyTree(tree: MObject, from: string, policy: MemberPolicy): MObject {
  const entries = new Map<string, MEntry>();
  for (const [, e] of tree.entries) {
    const value = e.value.kind === 'object' ? copyTree(e.value, from, policy) : e.value;
    entries.set(keyOf(e.key, policy), { ...e, value });
  }
  return { kind: 'object', entries, span: tree.span, copiedFrom: from };
}

/**
 * Applies an element's dotted assignments to its tree (mutating the tree this
 * pass just built, never the AST). `trees` holds the already merged trees of
 * untyped elements, for the named-object steps of 5.4 rule 4.
 */
export function applyAssignments(
  element: Element,
  tree: MObject,
  policy: MemberPolicy,
  trees: ReadonlyMap<string, MObject>,
  diagnostics: Diagnostic[],
): void {
  const ordered = [...element.assignments].sort(
    (a, b) => a.target.parts.length - b.target.parts.length || a.span.startOffset - b.span.startOffset,
  );
  for (const assignment of ordered) {
    const path = assignment.target.parts.slice(1);
    const shapeError = policy.checkShape(assignment, path, tree);
    if (shapeError) {
      diagnostics.push(shapeError);
      continue;
    }
    let node: MObject = tree;
    let ok = true;
    for (let i = 0; i < path.length - 1 && ok; i++) {
      const step = path[i]!;
      const k = keyOf(step.text, policy);
      const entry = node.entries.get(k);
      const shown = [element.name, ...path.slice(0, i + 1).map((p) => p.text)].join('.');
      if (!entry) {
        diagnostics.push(
          diagnostic('E304', assignment.value.span, `Trying to add to a member (${shown}) that doesn't exist`, {
            help: `define ${shown} first, e.g. ${shown}: { ... }`,
          }),
        );
        ok = false;
        break;
      }
      if (entry.value.kind === 'object') {
        node = entry.value;
        continue;
      }
      const leaf = entry.value.value;
      const named = leaf.kind === 'Name' && leaf.parts.length === 1 ? trees.get(leaf.parts[0]!.text) : undefined;
      if (named && policy.copyAllowedAt(path.slice(0, i + 1))) {
        const copy = copyTree(named, leaf.kind === 'Name' ? nameText(leaf) : '', policy);
        node.entries.set(k, { ...entry, value: copy });
        node = copy;
        continue;
      }
      diagnostics.push(
        diagnostic('E305', assignment.target.span, `${shown}.${path[i + 1]!.text} does not exist: ${shown} is not an object`, {
          related: [{ span: entry.span, message: `${shown} is set here` }],
        }),
      );
      ok = false;
    }
    if (!ok) continue;
    const last = path[path.length - 1]!;
    const k = keyOf(last.text, policy);
    const existing = node.entries.get(k);
    if (existing) {
      const { code, message } = policy.alreadySet(path, assignment);
      diagnostics.push(diagnostic(code, assignment.target.span, message, { related: [{ span: existing.span, message: 'first set here' }] }));
      continue;
    }
    node.entries.set(k, {
      key: last.text,
      keySpan: assignment.target.span,
      value: nodeOf(assignment.value, policy, diagnostics, path.length + 1),
      span: assignment.span,
      assignment,
    });
  }
}

/** Untyped objects: any depth, exact keys. */
export const UNTYPED_POLICY: MemberPolicy = {
  caseInsensitive: false,
  duplicateKeyCode: () => 'E301',
  checkShape: () => null,
  alreadySet: (path, a) => ({ code: 'E303', message: `Member ${nameText(a.target)} has already been set` }),
  copyAllowedAt: () => false,
};

/** Looks up a member path in a tree; returns the node or the index of the first missing step. */
export function lookup(tree: MObject, path: readonly string[], policy: MemberPolicy): { node: MNode } | { missing: number } {
  let node: MNode = tree;
  for (let i = 0; i < path.length; i++) {
    if (node.kind !== 'object') return { missing: i };
    const entry: MEntry | undefined = node.entries.get(keyOf(path[i]!, policy));
    if (!entry) return { missing: i };
    node = entry.value;
  }
  return { node };
}

export type { Namespace };
