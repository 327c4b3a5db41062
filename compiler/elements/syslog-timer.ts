import type * as A from '../../grammar/ast.ts';
import { nameText } from '../../grammar/format.ts';
import { diagnostic } from '../diagnostics/diagnostic.ts';
import { TIMER_ITEMS, type TimerItem } from '../ir.ts';
import type { MemberPolicy, MObject } from '../members.ts';
import type { TypedElement } from '../namespace.ts';
import { closest } from '../suggest.ts';
import { entry, spanOf, type ElementContext } from './common.ts';

/* Syslog (6.5) and Timer (6.6): flat elements with two keys each. */

function flatPolicy(type: string, keys: readonly string[], code: 'E571' | 'E581'): MemberPolicy {
  return {
    caseInsensitive: true,
    duplicateKeyCode: () => 'E301',
    checkShape(a: A.Assignment, path: readonly A.Identifier[]) {
      const key = path[0]!.text;
      if (path.length > 1 || !keys.includes(key.toLowerCase())) {
        const suggestion = closest(key, keys, true);
        return diagnostic(code, a.target.span, `Invalid ${type} member ${nameText(a.target)}`, {
          help: suggestion && path.length === 1 ? `did you mean ${suggestion}?` : `valid members are: ${keys.join(', ')}`,
        });
      }
      return null;
    },
    alreadySet: (_path, a) => ({ code: 'E303', message: `Member ${nameText(a.target)} has already been set` }),
    copyAllowedAt: () => false,
  };
}

const SYSLOG_KEYS = ['address', 'port'];
const TIMER_KEYS = ['interval', 'data'];
export const SYSLOG_POLICY = flatPolicy('Syslog', SYSLOG_KEYS, 'E571');
export const TIMER_POLICY = flatPolicy('Timer', TIMER_KEYS, 'E581');

function checkFlatKeys(tree: MObject, type: string, keys: readonly string[], code: 'E571' | 'E581', ctx: ElementContext): void {
  for (const [k, e] of tree.entries) {
    if (!keys.includes(k)) {
      const suggestion = closest(e.key, keys, true);
      ctx.report(code, e.keySpan, `Invalid ${type} member ${e.key}`, { help: suggestion ? `did you mean ${suggestion}?` : `valid members are: ${keys.join(', ')}` });
    } else if (e.value.kind === 'object') {
      ctx.report(code, e.keySpan, `Invalid ${type} member ${e.key}: it cannot be an object`);
    }
  }
}

export interface SyslogInfo {
  readonly name: string;
  readonly address: { value: number; text: string };
  readonly port: number;
}

export function validateSyslog(element: TypedElement, tree: MObject | undefined, ctx: ElementContext): SyslogInfo | undefined {
  if (!tree) return ctx.report('E209', element.decl.value.span, 'Syslog must be an object');
  checkFlatKeys(tree, 'Syslog', SYSLOG_KEYS, 'E571', ctx);
  const addressEntry = entry(tree, 'address');
  const portEntry = entry(tree, 'port');
  if (!addressEntry || !portEntry) {
    return ctx.report('E572', element.decl.type.span, 'Syslog address and/or port have not been specified', {
      help: `missing: ${[!addressEntry && 'address', !portEntry && 'port'].filter(Boolean).join(', ')}`,
    });
  }
  if (addressEntry.value.kind === 'object' || portEntry.value.kind === 'object') return undefined;
  const address = ctx.ipv4(addressEntry, 'Syslog address');
  const port = ctx.port(portEntry, 'Syslog port');
  if (!address || port === undefined) return undefined;
  return { name: element.name, address, port };
}

export interface TimerInfo {
  readonly name: string;
  readonly interval: number;
  readonly data: TimerItem[];
  readonly lbSpan: A.Value['span'] | null;
}

export function validateTimer(element: TypedElement, tree: MObject | undefined, ctx: ElementContext): TimerInfo | undefined {
  if (!tree) return ctx.report('E209', element.decl.value.span, 'Timer must be an object');
  checkFlatKeys(tree, 'Timer', TIMER_KEYS, 'E581', ctx);
  const start = element.decl.type.span;
  const intervalEntry = entry(tree, 'interval');
  const dataEntry = entry(tree, 'data');
  let interval: number | undefined;
  if (!intervalEntry) ctx.report('E586', start, `Timer ${element.name} has no interval`, { help: 'add interval: N (seconds)' });
  else if (intervalEntry.value.kind === 'leaf') {
    const r = ctx.resolve(intervalEntry.value);
    if (r && (r.kind !== 'integer' || r.value <= 0)) {
      ctx.report('E582', spanOf(intervalEntry), `Invalid interval value (${intervalEntry.value.value.kind === 'Name' ? nameText(intervalEntry.value.value) : r.kind === 'integer' ? r.value : r.kind}). It needs to resolve to a positive number of seconds`);
    } else if (r) interval = r.value;
  }
  if (!dataEntry) {
    ctx.report('E585', start, `Timer ${element.name} has no data`, { help: `add data: [${TIMER_ITEMS.join(', ')}] (any of them)` });
    return undefined;
  }
  if (dataEntry.value.kind !== 'leaf') return undefined;
  let list = dataEntry.value.value;
  if (list.kind === 'Name' && list.parts.length === 1) {
    const word = list.parts[0]!.text;
    const element2 = ctx.namespace.elements.get(word);
    if (!element2) {
      return ctx.report('E583', list.span, `No element with the name ${word} exists`, {
        help: (TIMER_ITEMS as readonly string[]).includes(word.toLowerCase()) ? `write data: [${word}]` : undefined,
      });
    }
    if (element2.kind !== 'untyped' || element2.decl.value.kind !== 'List') {
      return ctx.report('E583', list.span, `Invalid value of Timer member data. It needs to be a list: ${word} is not a list`);
    }
    ctx.resolver.used.add(word);
    list = element2.decl.value;
  }
  if (list.kind !== 'List') return ctx.report('E583', list.span, 'Invalid value of Timer member data. It needs to be a list of items');
  const seen = new Set<TimerItem>();
  let lbSpan: A.Value['span'] | null = null;
  let ok = true;
  for (const item of list.items) {
    const word = item.kind === 'Name' && item.parts.length === 1 ? item.parts[0]!.text.toLowerCase() : undefined;
    if (!word || !(TIMER_ITEMS as readonly string[]).includes(word)) {
      const suggestion = word ? closest(word, TIMER_ITEMS) : undefined;
      ctx.report('E584', item.span, `Invalid data value (${item.kind === 'Name' ? nameText(item) : 'not a word'}). Valid values are: ${TIMER_ITEMS.join(', ')}`, {
        help: suggestion ? `did you mean ${suggestion}?` : undefined,
      });
      ok = false;
      continue;
    }
    const t = word as TimerItem;
    if (seen.has(t)) ctx.report('W08', item.span, `Timer item ${t} is listed twice; it prints once`);
    seen.add(t);
    if (t === 'lb') lbSpan = item.span;
  }
  if (!ok || interval === undefined) return undefined;
  return { name: element.name, interval, data: TIMER_ITEMS.filter((t) => seen.has(t)), lbSpan };
}
