import type * as A from '../../grammar/ast.ts';
import type { Span } from '../../grammar/span.ts';
import { diagnostic, type Diagnostic, type DiagnosticExtras } from '../diagnostics/diagnostic.ts';
import type { DiagnosticCode } from '../diagnostics/codes.ts';
import type { MEntry, MNode, MObject } from '../members.ts';
import type { Namespace, TypedElement } from '../namespace.ts';
import { describe, type Resolver, type RValue } from '../resolve.ts';
import { closest } from '../suggest.ts';

/** What every element validator works with. */
export class ElementContext {
  constructor(
    readonly namespace: Namespace,
    readonly resolver: Resolver,
    readonly diagnostics: Diagnostic[],
  ) {}

  report(code: DiagnosticCode, span: Span, message: string, extras?: DiagnosticExtras): undefined {
    this.diagnostics.push(diagnostic(code, span, message, extras));
    return undefined;
  }

  resolve(node: MNode): RValue | undefined {
    return this.resolver.node(node, { inFunction: false });
  }

  /** An IPv4 address value, as a number and as text. */
  ipv4(entry: MEntry, what: string): { value: number; text: string } | undefined {
    const r = this.resolve(entry.value);
    if (!r) return undefined;
    if (r.kind !== 'ipv4') return this.report('E412', spanOf(entry), `${what} must be an IPv4 address, not ${describe(r)}`);
    return { value: r.value, text: r.text };
  }

  /** A netmask: an address with contiguous ones (6.1.2 rule 13). */
  netmask(entry: MEntry, what: string): { value: number; text: string; prefix: number } | undefined {
    const a = this.ipv4(entry, what);
    if (!a) return undefined;
    const prefix = prefixLength(a.value);
    if (prefix === undefined) {
      return this.report('E519', spanOf(entry), `${what} ${a.text} is not contiguous`, { help: 'a netmask is ones followed by zeros, e.g. 255.255.255.0' });
    }
    return { ...a, prefix };
  }

  /** An integer in [min, max]; decimals and other kinds are type errors. */
  integer(entry: MEntry, what: string, min: number, max: number): number | undefined {
    const r = this.resolve(entry.value);
    if (!r) return undefined;
    return this.integerValue(r, spanOf(entry), what, min, max);
  }

  integerValue(r: RValue, span: Span, what: string, min: number, max: number): number | undefined {
    if (r.kind !== 'integer') return this.report('E412', span, `${what} must be an integer, not ${describe(r)}`);
    if (r.value < min || r.value > max) {
      return this.report('E413', span, `${what} must be ${max === Number.MAX_SAFE_INTEGER ? `at least ${min}` : `between ${min} and ${max}`}, not ${r.text}`);
    }
    return r.value;
  }

  /** A port: an integer 1-65535 or a port name constant. */
  port(entry: MEntry, what: string): number | undefined {
    const r = this.resolve(entry.value);
    if (!r) return undefined;
    if (r.kind === 'constant' && r.info.group === 'port') return r.info.value;
    return this.integerValue(r, spanOf(entry), what, 1, 65535);
  }

  boolean(entry: MEntry, code: DiagnosticCode, what: string): boolean | undefined {
    const word = bareWord(entry.value);
    if (word !== undefined && !this.namespace.elements.has(word)) {
      // `masquerade: yes` is a wrong boolean, not an undefined name.
      return this.report(code, spanOf(entry), `${what} must be true or false, not ${word}`);
    }
    const r = this.resolve(entry.value);
    if (!r) return undefined;
    if (r.kind !== 'boolean') return this.report(code, spanOf(entry), `${what} must be true or false, not ${describe(r)}`);
    return r.value;
  }

  /** Names of typed elements of one type, for did-you-mean help. */
  namesOf(type: TypedElement['type']): string[] {
    return [...this.namespace.elements.values()].filter((e) => e.kind === 'typed' && e.type === type).map((e) => e.name);
  }

  /**
   * An `iface:` member: a bare name of an Iface element (not resolved through
   * untyped elements: upstream's fix, 10.5 row 50).
   */
  ifaceRef(entry: MEntry, notNameCode: DiagnosticCode, unknownCode: DiagnosticCode, what: string): string | undefined {
    const word = bareWord(entry.value);
    if (word === undefined) return this.report(notNameCode, spanOf(entry), `${what} contains an invalid value: it must be the name of an Iface`);
    const element = this.namespace.elements.get(word);
    if (!element || element.kind !== 'typed' || element.type !== 'iface') {
      const suggestion = closest(word, this.namesOf('iface'));
      return this.report(unknownCode, spanOf(entry), `No Iface with the name ${word} exists`, {
        help: suggestion ? `did you mean ${suggestion}?` : undefined,
      });
    }
    this.resolver.used.add(word);
    return word;
  }

  /**
   * An object member that may also be the name of an untyped object
   * (Load_balancer `clients`/`servers`, pool nodes): its tree.
   */
  objectOrNamed(node: MNode): MObject | undefined {
    if (node.kind === 'object') return node;
    const v = node.value;
    if (v.kind !== 'Name' || v.parts.length !== 1) return undefined;
    const element = this.namespace.elements.get(v.parts[0]!.text);
    if (!element || element.kind !== 'untyped') return undefined;
    this.resolver.used.add(element.name);
    return this.resolver.treeOf(element.name);
  }
}

/** Where to report a problem with a member's value. */
export function spanOf(entry: MEntry): Span {
  return entry.value.kind === 'leaf' ? entry.value.value.span : entry.value.span;
}

/** A value written as one bare word (`dhcp`, `tcp`, `round_robin`), lower-cased; undefined otherwise. */
export function bareWord(node: MNode): string | undefined {
  if (node.kind !== 'leaf') return undefined;
  const v = node.value;
  if (v.kind !== 'Name' || v.parts.length !== 1) return undefined;
  return v.parts[0]!.text;
}

export function prefixLength(mask: number): number | undefined {
  const inverted = ~mask >>> 0;
  if ((inverted & (inverted + 1)) !== 0) return undefined;
  return Math.clz32(inverted);
}

export function maskOf(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

export function ipv4Text(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** Reports members of `tree` whose keys are not in `allowed` (lower-case). */
export function unknownKeys(
  ctx: ElementContext,
  tree: MObject,
  allowed: readonly string[],
  code: DiagnosticCode,
  message: (key: string) => string,
): void {
  for (const [k, entry] of tree.entries) {
    if (allowed.includes(k.toLowerCase())) continue;
    const suggestion = closest(entry.key, allowed, true);
    ctx.report(code, entry.keySpan, message(entry.key), {
      help: suggestion ? `did you mean ${suggestion}?` : `valid members are: ${allowed.join(', ')}`,
    });
  }
}

export function entry(tree: MObject, key: string): MEntry | undefined {
  return tree.entries.get(key) ?? [...tree.entries.values()].find((e) => e.key.toLowerCase() === key);
}

export type { A };

/**
 * For a MemberPolicy's checkShape: the first key of an assignment's path the
 * element does not know at that depth, with a did-you-mean or the list of
 * valid keys. `keysAt` gives the keys allowed under a lower-cased prefix
 * (undefined: nothing may nest there).
 */
export function unknownMember(
  path: readonly A.Identifier[],
  keysAt: (prefix: readonly string[]) => readonly string[] | undefined,
): { index: number; key: string; help: string | undefined } | null {
  for (let i = 0; i < path.length; i++) {
    const allowed = keysAt(path.slice(0, i).map((p) => p.text.toLowerCase()));
    const key = path[i]!.text;
    if (allowed && allowed.includes(key.toLowerCase())) continue;
    const suggestion = allowed ? closest(key, allowed, true) : undefined;
    return { index: i, key, help: suggestion ? `did you mean ${suggestion}?` : allowed ? `valid members here are: ${allowed.join(', ')}` : undefined };
  }
  return null;
}
