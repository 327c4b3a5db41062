import type * as A from '../../grammar/ast.ts';
import { nameText } from '../../grammar/format.ts';
import { diagnostic } from '../diagnostics/diagnostic.ts';
import type { IrConntrack, IrTimeouts } from '../ir.ts';
import type { MemberPolicy, MObject } from '../members.ts';
import type { TypedElement } from '../namespace.ts';
import { closest } from '../suggest.ts';
import { entry, unknownMember, type ElementContext } from './common.ts';

/* Conntrack (nacl-language.md 6.4; defaults from runtime-semantics.md 2.6). */

const TOP_KEYS = ['limit', 'reserve', 'stateful_tcp', 'timeout'];
const STATES = ['established', 'unconfirmed', 'confirmed'] as const;
const PROTOCOLS = ['tcp', 'udp', 'icmp'] as const;

export const DEFAULT_TIMEOUTS: IrConntrack['timeouts'] = {
  unconfirmed: { tcp: 10, udp: 10, icmp: 10 },
  confirmed: { tcp: 30, udp: 10, icmp: 10 },
  established: { tcp: 300, udp: 10, icmp: 10 },
};

export type ConntrackSettings = Omit<IrConntrack, 'enabled'> & { readonly element: TypedElement | null };

export const DEFAULT_CONNTRACK: ConntrackSettings = { element: null, limit: 0, reserve: 0, statefulTcp: false, timeouts: DEFAULT_TIMEOUTS };

function keysAt(path: readonly string[]): readonly string[] | undefined {
  if (path.length === 0) return TOP_KEYS;
  if (path.length === 1 && path[0] === 'timeout') return STATES;
  if (path.length === 2 && path[0] === 'timeout' && (STATES as readonly string[]).includes(path[1]!)) return PROTOCOLS;
  return undefined;
}

export const CONNTRACK_POLICY: MemberPolicy = {
  caseInsensitive: true,
  duplicateKeyCode: () => 'E301',
  checkShape(a: A.Assignment, path: readonly A.Identifier[]) {
    const unknown = unknownMember(path, keysAt);
    if (!unknown) return null;
    const { index: i, key, help } = unknown;
    // An unknown state group given a whole object was upstream's "Internal error" (E563).
    const code = i === 1 && path[0]!.text.toLowerCase() === 'timeout' ? 'E563' : 'E561';
    return diagnostic(code, a.target.span, `Invalid Conntrack member ${key}${i > 0 ? ` in ${nameText(a.target).split('.').slice(0, i + 1).join('.')}` : ''}`, { help });
  },
  alreadySet: (_path, a) => ({ code: 'E303', message: `Member ${nameText(a.target)} has already been set` }),
  copyAllowedAt: () => false,
};

export function validateConntrack(element: TypedElement, tree: MObject | undefined, ctx: ElementContext): ConntrackSettings | undefined {
  if (!tree) {
    ctx.report('E209', element.decl.value.span, 'Conntrack must be an object');
    return undefined;
  }
  const start = element.decl.type.span;
  for (const [k, e] of tree.entries) {
    if (!TOP_KEYS.includes(k)) reportUnknown(ctx, e.keySpan, e.key, TOP_KEYS, '');
  }
  const limitEntry = entry(tree, 'limit');
  const reserveEntry = entry(tree, 'reserve');
  const statefulEntry = entry(tree, 'stateful_tcp');
  const limit = limitEntry ? ctx.integer(limitEntry, 'limit', 0, Number.MAX_SAFE_INTEGER) : 0;
  const reserve = reserveEntry ? ctx.integer(reserveEntry, 'reserve', 0, Number.MAX_SAFE_INTEGER) : 0;
  const statefulTcp = statefulEntry ? ctx.boolean(statefulEntry, 'E412', 'stateful_tcp') : false;
  const timeouts = { unconfirmed: { ...DEFAULT_TIMEOUTS.unconfirmed }, confirmed: { ...DEFAULT_TIMEOUTS.confirmed }, established: { ...DEFAULT_TIMEOUTS.established } };
  let ok = limit !== undefined && reserve !== undefined && statefulTcp !== undefined;
  const timeoutEntry = entry(tree, 'timeout');
  if (timeoutEntry) {
    if (timeoutEntry.value.kind !== 'object') {
      ctx.report('E562', start, 'Invalid timeout value of Conntrack (needs to be an object)', { related: [{ span: timeoutEntry.span, message: 'timeout is set here' }] });
      ok = false;
    } else {
      for (const [state, stateEntry] of timeoutEntry.value.entries) {
        if (!(STATES as readonly string[]).includes(state)) {
          reportUnknown(ctx, stateEntry.keySpan, stateEntry.key, STATES, ` in ${element.name}.timeout`);
          continue;
        }
        if (stateEntry.value.kind !== 'object') {
          ctx.report('E562', start, `Invalid timeout value of Conntrack: ${state} needs to be an object`, { related: [{ span: stateEntry.span, message: `${state} is set here` }] });
          ok = false;
          continue;
        }
        for (const [proto, protoEntry] of stateEntry.value.entries) {
          if (!(PROTOCOLS as readonly string[]).includes(proto)) {
            reportUnknown(ctx, protoEntry.keySpan, protoEntry.key, PROTOCOLS, ` in ${element.name}.timeout.${state}`);
            continue;
          }
          const seconds = ctx.integer(protoEntry, `timeout.${state}.${proto}`, 1, Number.MAX_SAFE_INTEGER);
          if (seconds === undefined) ok = false;
          else (timeouts[state as keyof typeof timeouts] as Record<string, number>)[proto] = seconds;
        }
      }
    }
  }
  if (!ok) return undefined;
  return { element, limit: limit!, reserve: reserve!, statefulTcp: statefulTcp!, timeouts: timeouts as Record<(typeof STATES)[number], IrTimeouts> };
}

function reportUnknown(ctx: ElementContext, span: A.Value['span'], key: string, allowed: readonly string[], where: string): void {
  const suggestion = closest(key, allowed, true);
  ctx.report('E561', span, `Invalid Conntrack member ${key}${where}`, {
    help: suggestion ? `did you mean ${suggestion}?` : `valid members here are: ${allowed.join(', ')}`,
  });
}
