import type * as A from '../grammar/ast.ts';
import type { Span } from '../grammar/span.ts';
import { nameText } from '../grammar/format.ts';
import { CONSTANTS, FIELDS, PROTOCOL_OBJECTS, type ConstantInfo, type FieldInfo } from './constants.ts';
import { diagnostic, type Diagnostic } from './diagnostics/diagnostic.ts';
import { keyOf, lookup, type MemberPolicy, type MNode, type MObject } from './members.ts';
import type { Element, Namespace } from './namespace.ts';
import { closest } from './suggest.ts';

/*
 * Value resolution (nacl-language.md 4.3-4.5): names become the values they
 * denote - element values, members, predefined constants or packet fields.
 * Each untyped element is resolved once; its errors are reported once, at
 * its own spans, however often it is used.
 */

export type RScalar =
  | { readonly kind: 'integer'; readonly value: number; readonly text: string; readonly span: Span }
  | { readonly kind: 'decimal'; readonly value: number; readonly text: string; readonly span: Span }
  | { readonly kind: 'ipv4'; readonly value: number; readonly text: string; readonly span: Span };

export type RValue =
  | RScalar
  | { readonly kind: 'cidr'; readonly net: number; readonly prefix: number; readonly text: string; readonly span: Span }
  | { readonly kind: 'range'; readonly from: RScalar; readonly to: RScalar; readonly span: Span }
  | { readonly kind: 'string'; readonly value: string; readonly span: Span }
  | { readonly kind: 'boolean'; readonly value: boolean; readonly span: Span }
  | { readonly kind: 'list'; readonly items: readonly RValue[]; readonly span: Span }
  | { readonly kind: 'object'; readonly entries: readonly { readonly key: string; readonly value: RValue }[]; readonly span: Span }
  | { readonly kind: 'constant'; readonly info: ConstantInfo; readonly text: string; readonly span: Span }
  | { readonly kind: 'field'; readonly info: FieldInfo; readonly text: string; readonly span: Span }
  /** A typed element used as a value (`lan`): its object, rarely useful. */
  | { readonly kind: 'element'; readonly element: Element; readonly span: Span };

export interface ResolveContext {
  /** Inside a function body, where `ip.ttl` is a packet field. */
  readonly inFunction: boolean;
}

const OUTSIDE: ResolveContext = { inFunction: false };

export class Resolver {
  /** Elements referenced by name from somewhere (for W01). */
  readonly used = new Set<string>();
  private readonly cache = new Map<string, RValue | null>();
  private readonly inProgress: string[] = [];
  private readonly membersInProgress = new Set<string>();

  constructor(
    private readonly namespace: Namespace,
    /** Merged member trees, by element name. */
    private readonly trees: ReadonlyMap<string, MObject>,
    private readonly policies: ReadonlyMap<string, MemberPolicy>,
    private readonly diagnostics: Diagnostic[],
  ) {}

  resolve(value: A.Value, context: ResolveContext = OUTSIDE): RValue | undefined {
    switch (value.kind) {
      // `text` as written: messages echo `514.0`, not the number it became.
      case 'Integer':
        return { kind: 'integer', value: value.value, text: `${value.negative ? '-' : ''}${value.text}`, span: value.span };
      case 'Decimal':
        return { kind: 'decimal', value: value.value, text: `${value.negative ? '-' : ''}${value.text}`, span: value.span };
      case 'Ipv4':
        return Number.isNaN(value.value) ? undefined : { kind: 'ipv4', value: value.value, text: value.text, span: value.span };
      case 'Cidr': {
        if (Number.isNaN(value.address.value) || value.prefix > 32) return undefined;
        const mask = value.prefix === 0 ? 0 : (0xffffffff << (32 - value.prefix)) >>> 0;
        const net = (value.address.value & mask) >>> 0;
        if (net !== value.address.value) {
          const masked = `${net >>> 24}.${(net >>> 16) & 255}.${(net >>> 8) & 255}.${net & 255}/${value.prefix}`;
          this.diagnostics.push(
            diagnostic('W03', value.span, `${value.text} has host bits set; it denotes the network ${masked}`, { help: `write ${masked}` }),
          );
        }
        return { kind: 'cidr', net, prefix: value.prefix, text: value.text, span: value.span };
      }
      case 'Range':
        return this.range(value);
      case 'String':
        return { kind: 'string', value: value.value, span: value.span };
      case 'Boolean':
        return { kind: 'boolean', value: value.value, span: value.span };
      case 'List': {
        const items: RValue[] = [];
        for (const item of value.items) {
          const r = this.resolve(item, context);
          if (!r) return undefined;
          items.push(r);
        }
        return { kind: 'list', items, span: value.span };
      }
      case 'Object': {
        const entries: { key: string; value: RValue }[] = [];
        for (const pair of value.pairs) {
          const r = this.resolve(pair.value, context);
          if (!r) return undefined;
          entries.push({ key: pair.key.text, value: r });
        }
        return { kind: 'object', entries, span: value.span };
      }
      case 'Name':
        return this.name(value, context);
    }
  }

  private range(value: A.RangeLiteral): RValue | undefined {
    const from = this.resolve(value.from) as RScalar | undefined;
    const to = this.resolve(value.to) as RScalar | undefined;
    if (!from || !to) return undefined;
    if (from.kind !== to.kind) {
      this.diagnostics.push(diagnostic('E407', value.span, "A range's values need to be of the same type", { help: `${from.kind} - ${to.kind}` }));
      return undefined;
    }
    if (from.value > to.value) {
      this.diagnostics.push(
        diagnostic('E410', value.span, `reversed range: ${rangeEnd(value.from)} is greater than ${rangeEnd(value.to)}`, {
          help: `write ${rangeEnd(value.to)}-${rangeEnd(value.from)}; a reversed range would match nothing`,
        }),
      );
      return undefined;
    }
    return { kind: 'range', from, to, span: value.span };
  }

  private name(ref: A.NameRef, context: ResolveContext): RValue | undefined {
    const [head, ...rest] = ref.parts;
    const element = this.namespace.elements.get(head!.text);
    const shown = nameText(ref);
    if (element) {
      this.used.add(element.name);
      if (element.kind === 'function') {
        if (rest.length > 0) {
          this.diagnostics.push(diagnostic('E404', ref.span, `${element.name} is a function: a function has no named attributes`));
        } else {
          this.diagnostics.push(diagnostic('E403', ref.span, `the name of a function cannot be used as a value: ${element.name}`));
        }
        return undefined;
      }
      if (rest.length === 0) return this.element(element, ref.span);
      return this.member(element, rest, ref);
    }
    if (rest.length === 0) {
      const constant = CONSTANTS.get(head!.text.toLowerCase());
      if (constant) {
        if (constant.group === 'unsupported') {
          this.diagnostics.push(
            diagnostic('E411', ref.span, `${head!.text} is not supported`, { help: 'interface matching is not available in NaCl rules' }),
          );
          return undefined;
        }
        return { kind: 'constant', info: constant, text: head!.text, span: ref.span };
      }
    }
    if (PROTOCOL_OBJECTS.has(head!.text.toLowerCase()) && rest.length > 0) return this.field(ref, context);
    const suggestion = closest(head!.text, [...this.namespace.elements.keys(), ...CONSTANTS.keys()]);
    this.diagnostics.push(
      diagnostic('E401', ref.span, `Undefined value ${shown}`, { help: suggestion ? `did you mean ${suggestion}?` : undefined }),
    );
    return undefined;
  }

  private field(ref: A.NameRef, context: ResolveContext): RValue | undefined {
    const shown = nameText(ref);
    const object = ref.parts[0]!.text.toLowerCase();
    if (!context.inFunction) {
      this.diagnostics.push(
        diagnostic('E408', ref.span, `Trying to transpile protocol object (${object}), but the function's subtype has not been given`, {
          help: 'packet fields can only be used inside Filter and Nat functions',
        }),
      );
      return undefined;
    }
    if (ref.parts.length > 2) {
      this.diagnostics.push(diagnostic('E702', ref.span, `Undefined protocol object properties: ${shown}`));
      return undefined;
    }
    const key = `${object}.${ref.parts[1]!.text.toLowerCase()}`;
    const info = FIELDS.get(key);
    if (!info) {
      const valid = [...FIELDS.keys()].filter((k) => k.startsWith(object + '.'));
      const suggestion = closest(key, valid);
      this.diagnostics.push(
        diagnostic('E703', ref.span, `unknown field ${shown}`, {
          help: suggestion ? `did you mean ${suggestion}?` : `the fields of ${object} are ${valid.join(', ')}`,
        }),
      );
      return undefined;
    }
    return { kind: 'field', info, text: shown, span: ref.span };
  }

  /** The value of a whole element, as referenced by its name. */
  private element(element: Element, span: Span): RValue | undefined {
    if (element.kind === 'typed') return { kind: 'element', element, span };
    if (element.kind !== 'untyped') return undefined;
    const value = this.untyped(element, span);
    return value ? withSpan(value, span) : undefined;
  }

  /** Resolves an untyped element once; later uses get the cached value. */
  untyped(element: Element & { kind: 'untyped' }, useSpan?: Span): RValue | undefined {
    const cached = this.cache.get(element.name);
    if (cached !== undefined) return cached ?? undefined;
    const cycleStart = this.inProgress.indexOf(element.name);
    if (cycleStart >= 0) {
      const cycle = [...this.inProgress.slice(cycleStart), element.name].join(' -> ');
      this.diagnostics.push(diagnostic('E409', useSpan ?? element.nameSpan, `circular reference: ${cycle}`));
      return undefined;
    }
    this.inProgress.push(element.name);
    const tree = this.trees.get(element.name);
    const value = tree ? this.tree(tree, OUTSIDE) : this.resolve(element.decl.value, OUTSIDE);
    this.inProgress.pop();
    this.cache.set(element.name, value ?? null);
    return value;
  }

  private member(element: Element, rest: readonly A.Identifier[], ref: A.NameRef): RValue | undefined {
    const tree = this.trees.get(element.name);
    const policy = this.policies.get(element.name);
    const path = rest.map((p) => p.text);
    if (!tree || !policy) {
      this.diagnostics.push(diagnostic('E402', ref.span, `Could not identify ${nameText(ref)}: ${element.name} has no members`));
      return undefined;
    }
    const found = lookup(tree, path, policy);
    if ('missing' in found) {
      const owner = [element.name, ...path.slice(0, found.missing)].join('.');
      const missingPart = rest[found.missing]!;
      const parent = lookup(tree, path.slice(0, found.missing), policy);
      const keys = 'node' in parent && parent.node.kind === 'object' ? [...parent.node.entries.values()].map((e) => e.key) : [];
      const suggestion = closest(missingPart.text, keys, policy.caseInsensitive);
      this.diagnostics.push(
        diagnostic('E402', ref.span, `Could not identify ${nameText(ref)}: ${owner} has no member ${missingPart.text}`, {
          help: suggestion ? `did you mean ${owner}.${suggestion}?` : undefined,
        }),
      );
      return undefined;
    }
    const key = `${element.name}.${path.join('.')}`;
    if (this.membersInProgress.has(key)) {
      this.diagnostics.push(diagnostic('E409', ref.span, `circular reference: ${key} refers to itself`));
      return undefined;
    }
    this.membersInProgress.add(key);
    const value = this.node(found.node, OUTSIDE);
    this.membersInProgress.delete(key);
    return value ? withSpan(value, ref.span) : undefined;
  }

  node(node: MNode, context: ResolveContext): RValue | undefined {
    return node.kind === 'leaf' ? this.resolve(node.value, context) : this.tree(node, context);
  }

  private tree(tree: MObject, context: ResolveContext): RValue | undefined {
    const entries: { key: string; value: RValue }[] = [];
    for (const [, e] of tree.entries) {
      const r = this.node(e.value, context);
      if (!r) return undefined;
      entries.push({ key: e.key, value: r });
    }
    return { kind: 'object', entries, span: tree.span };
  }

  /** The merged tree of an element, if it has one. */
  treeOf(name: string): MObject | undefined {
    return this.trees.get(name);
  }

  policyOf(name: string): MemberPolicy | undefined {
    return this.policies.get(name);
  }

  keyOf(name: string, key: string): string {
    const policy = this.policies.get(name);
    return policy ? keyOf(key, policy) : key;
  }
}

function rangeEnd(s: A.ScalarLiteral): string {
  return s.kind === 'Ipv4' ? s.text : s.negative ? `(-${s.text})` : s.text;
}

/** The same value, reported at the place it is used. */
export function withSpan(value: RValue, span: Span): RValue {
  return { ...value, span } as RValue;
}

/** Flattens a set value (4.5) into its scalar members; lists and objects recursively. */
export function flatten(value: RValue): RValue[] {
  if (value.kind === 'list') return value.items.flatMap(flatten);
  if (value.kind === 'object') return value.entries.flatMap((e) => flatten(e.value));
  return [value];
}

export function isSet(value: RValue): boolean {
  return value.kind === 'cidr' || value.kind === 'range' || value.kind === 'list' || value.kind === 'object';
}

export function describe(value: RValue): string {
  switch (value.kind) {
    case 'integer':
      return `the number ${value.text}`;
    case 'decimal':
      return `the decimal ${value.text}`;
    case 'ipv4':
      return `the address ${value.text}`;
    case 'cidr':
      return `the CIDR ${value.text}`;
    case 'range':
      return 'a range';
    case 'string':
      return 'a string';
    case 'boolean':
      return `the boolean ${value.value}`;
    case 'list':
      return 'a list';
    case 'object':
      return 'an object';
    case 'constant':
      return `the constant ${value.text}`;
    case 'field':
      return `the packet field ${value.text}`;
    case 'element':
      return `the ${value.element.kind === 'typed' ? value.element.type : 'element'} ${value.element.name}`;
  }
}
