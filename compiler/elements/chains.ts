import type * as A from '../../grammar/ast.ts';
import type { Span } from '../../grammar/span.ts';
import { inlineValue } from '../../grammar/format.ts';
import type { DiagnosticCode } from '../diagnostics/codes.ts';
import type { MEntry } from '../members.ts';
import { closest } from '../suggest.ts';
import { spanOf, type ElementContext } from './common.ts';

/** A function named on a chain, where it is named. */
export interface ChainRef {
  readonly name: string;
  readonly span: Span;
}

/**
 * A chain value: a function name or a list of function names, in order
 * (6.1.3, 6.2.3). Anything else is "not supported"; a name that is not a
 * function is E507.
 */
export function chainNames(entry: MEntry, ctx: ElementContext, notNameCode: DiagnosticCode): ChainRef[] {
  if (entry.value.kind !== 'leaf') {
    ctx.report(notNameCode, spanOf(entry), 'This is not supported: a chain is a function name or a list of function names');
    return [];
  }
  const value = entry.value.value;
  const items: A.Value[] = value.kind === 'List' ? [...value.items] : [value];
  const refs: ChainRef[] = [];
  for (const item of items) {
    if (item.kind !== 'Name' || item.parts.length !== 1) {
      ctx.report(notNameCode, item.span, `This is not supported: ${inlineValue(item)} (a chain holds function names)`);
      continue;
    }
    const name = item.parts[0]!.text;
    const element = ctx.namespace.elements.get(name);
    if (!element || element.kind !== 'function') {
      const functions = [...ctx.namespace.elements.values()].filter((e) => e.kind === 'function').map((e) => e.name);
      const suggestion = closest(name, functions);
      ctx.report('E507', item.span, `No function with the name ${name} exists`, {
        help: suggestion ? `did you mean ${suggestion}?` : element ? `${name} is not a Filter or Nat function` : undefined,
      });
      continue;
    }
    ctx.resolver.used.add(name);
    refs.push({ name, span: item.span });
  }
  return refs;
}
