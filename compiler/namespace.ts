import type * as A from '../grammar/ast.ts';
import type { Span } from '../grammar/span.ts';
import { nameText } from '../grammar/format.ts';
import { FUNCTION_TYPES, SUBTYPES, TYPED_ELEMENTS } from './constants.ts';
import { diagnostic, type Diagnostic } from './diagnostics/diagnostic.ts';
import { closest } from './suggest.ts';
import type { Protocol } from './ir.ts';

/*
 * Binding: every top-level form becomes an element of one flat namespace
 * (nacl-language.md 5.1). Dotted assignments are grouped under the element
 * they extend. Nothing is resolved or validated beyond naming here.
 */

export type ElementType = 'iface' | 'gateway' | 'load_balancer' | 'conntrack' | 'syslog' | 'timer';

interface ElementBase {
  readonly name: string;
  readonly nameSpan: Span;
  /** Dotted assignments to this element, in source order. */
  readonly assignments: A.Assignment[];
}

export interface TypedElement extends ElementBase {
  readonly kind: 'typed';
  readonly type: ElementType;
  readonly decl: A.TypedInit;
}

export interface UntypedElement extends ElementBase {
  readonly kind: 'untyped';
  readonly decl: A.Assignment;
}

export interface FunctionElement extends ElementBase {
  readonly kind: 'function';
  readonly type: 'filter' | 'nat';
  readonly subtype: Protocol;
  readonly decl: A.FunctionDecl;
}

export type Element = TypedElement | UntypedElement | FunctionElement;

export interface Namespace {
  /** Elements by exact name, in source order. */
  readonly elements: Map<string, Element>;
}

const RESERVED_NAMES = new Set(['tcp', 'udp', 'icmp', 'ip', 'ct']);
const SINGLETONS = new Set<ElementType>(['gateway', 'conntrack', 'syslog']);
const TYPE_WORDS = ['Iface', 'Gateway', 'Load_balancer', 'Conntrack', 'Syslog', 'Timer'];

export function bind(program: A.Program, diagnostics: Diagnostic[]): Namespace {
  const elements = new Map<string, Element>();
  /** Every name registered (including dotted assignment texts), for E202. */
  const defined = new Map<string, Span>();
  const singletons = new Map<ElementType, Span>();
  const dotted: A.Assignment[] = [];

  const register = (name: string, span: Span): boolean => {
    const first = defined.get(name);
    if (first) {
      diagnostics.push(
        diagnostic('E202', span, `Element ${name} has already been defined`, { related: [{ span: first, message: 'first defined here' }] }),
      );
      return false;
    }
    defined.set(name, span);
    return true;
  };

  const validName = (first: A.Identifier, shown: string, span: Span): boolean => {
    if (first.text.includes('-')) {
      diagnostics.push(
        diagnostic('E203', span, `Invalid character (-) in name ${shown}`, { help: `the first part of a name cannot contain "-"; try ${first.text.replace(/-/g, '_')}` }),
      );
      return false;
    }
    if (RESERVED_NAMES.has(first.text.toLowerCase())) {
      diagnostics.push(diagnostic('E204', span, `Invalid name ${shown}: ${first.text} is a protocol object (tcp, udp, icmp, ip, ct)`));
      return false;
    }
    return true;
  };

  for (const element of program.elements) {
    switch (element.kind) {
      case 'StrayNumber':
        diagnostics.push(diagnostic('W11', element.span, `stray number ${element.value.text} ignored`, { help: 'remove it; a number alone does nothing' }));
        break;
      case 'TypedInit': {
        const word = element.type.text.toLowerCase();
        if (FUNCTION_TYPES.has(word) || word === 'rewrite') {
          diagnostics.push(
            diagnostic('E207', element.type.span, `${element.type.text} is a function type; write ${element.type.text}::IP ${element.name.text} { ... }`),
          );
          break;
        }
        if (!TYPED_ELEMENTS.has(word)) {
          diagnostics.push(undefinedType(element.type));
          break;
        }
        const type = word as ElementType;
        if (!validName(element.name, element.name.text, element.name.span)) break;
        if (SINGLETONS.has(type)) {
          const first = singletons.get(type);
          if (first) {
            diagnostics.push(
              diagnostic('E206', element.type.span, `A ${element.type.text} has already been defined`, {
                related: [{ span: first, message: 'first defined here' }],
                help: `an appliance has one ${type === 'gateway' ? 'router' : type === 'conntrack' ? 'connection tracker' : 'syslog sink'}`,
              }),
            );
            break;
          }
          singletons.set(type, element.type.span);
        }
        if (!register(element.name.text, element.name.span)) break;
        elements.set(element.name.text, { kind: 'typed', type, name: element.name.text, nameSpan: element.name.span, decl: element, assignments: [] });
        break;
      }
      case 'Assignment': {
        const parts = element.target.parts;
        const name = nameText(element.target);
        if (!validName(parts[0]!, name, element.target.span)) break;
        if (!register(name, element.target.span)) break;
        if (parts.length === 1) {
          elements.set(name, { kind: 'untyped', name, nameSpan: element.target.span, decl: element, assignments: [] });
        } else {
          dotted.push(element);
        }
        break;
      }
      case 'Function': {
        const word = element.type.text.toLowerCase();
        const where = element.type.span;
        if (word === 'rewrite') {
          diagnostics.push(diagnostic('E208', where, 'function type Rewrite is not supported', { help: 'use Nat for address rewriting' }));
          break;
        }
        if (TYPED_ELEMENTS.has(word)) {
          diagnostics.push(diagnostic('E207', where, `${element.type.text} is not a function type; write ${element.type.text} name { ... }`));
          break;
        }
        if (!FUNCTION_TYPES.has(word)) {
          diagnostics.push(undefinedType(element.type, ['Filter', 'Nat']));
          break;
        }
        const sub = element.subtype.text.toLowerCase();
        if (!SUBTYPES.has(sub)) {
          diagnostics.push(unknownSubtype(element.subtype));
          break;
        }
        if (!element.name) {
          diagnostics.push(
            diagnostic('E201', joinHeader(element), 'Missing name of element', { help: `write ${element.type.text}::${element.subtype.text} my_name { ... }` }),
          );
          break;
        }
        if (!validName(element.name, element.name.text, element.name.span)) break;
        if (!register(element.name.text, element.name.span)) break;
        elements.set(element.name.text, {
          kind: 'function',
          type: word as 'filter' | 'nat',
          subtype: sub as Protocol,
          name: element.name.text,
          nameSpan: element.name.span,
          decl: element,
          assignments: [],
        });
        break;
      }
    }
  }

  for (const assignment of dotted) {
    const target = assignment.target.parts[0]!.text;
    const element = elements.get(target);
    if (!element) {
      const suggestion = closest(target, [...elements.keys()]);
      diagnostics.push(
        diagnostic('E302', assignment.target.span, `No element with the name ${target} exists`, {
          help: suggestion ? `did you mean ${suggestion}?` : undefined,
        }),
      );
      continue;
    }
    element.assignments.push(assignment);
  }
  return { elements };
}

export function unknownSubtype(subtype: A.Identifier): Diagnostic {
  const suggestion = closest(subtype.text.toUpperCase(), ['IP', 'TCP', 'UDP', 'ICMP']);
  return diagnostic('E615', subtype.span, `unknown subtype ${subtype.text} (expected IP, TCP, UDP or ICMP)`, {
    help: suggestion && suggestion !== subtype.text.toUpperCase() ? `did you mean ${suggestion}?` : undefined,
  });
}

function undefinedType(type: A.Identifier, words = TYPE_WORDS): Diagnostic {
  if (type.text.toLowerCase() === 'vlan') {
    return diagnostic('E205', type.span, 'Undefined type Vlan', { help: 'a VLAN is an Iface with a vlan id: Iface name { index: N, vlan: ID, ... }' });
  }
  const suggestion = closest(type.text, words, true);
  return diagnostic('E205', type.span, `Undefined type ${type.text}`, {
    help: suggestion ? `did you mean ${suggestion}?` : `the types are ${words.join(', ')}`,
  });
}

function joinHeader(fn: A.FunctionDecl): Span {
  return { ...fn.type.span, endLine: fn.subtype.span.endLine, endColumn: fn.subtype.span.endColumn, endOffset: fn.subtype.span.endOffset };
}
