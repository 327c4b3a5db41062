import type * as A from '../grammar/ast.ts';
import type { Span } from '../grammar/span.ts';
import { conditionText, inlineValue, nameText } from '../grammar/format.ts';
import { ACTIONS, CONSTANT_GROUP_OF, SUBTYPES, SYSLOG_SEVERITIES, type FieldInfo, type FieldType } from './constants.ts';
import { CT_STATE, type IrCompareOp, type IrExpr, type IrLogArg, type IrRuleSource, type IrStatement, type Protocol } from './ir.ts';
import type { ElementContext } from './elements/common.ts';
import { ipv4Text } from './elements/common.ts';
import type { FunctionElement } from './namespace.ts';
import { unknownSubtype } from './namespace.ts';
import { describe, flatten, isSet, type RValue } from './resolve.ts';
import { closest } from './suggest.ts';

/*
 * Functions (nacl-language.md section 7): checks every body in its packet
 * context and lowers it to IR statements, one stable rule id per statement.
 */

/** May a function of subtype `inner` be nested in or called from `context` (7.5)? */
const ALLOWED: Record<Protocol, readonly Protocol[]> = {
  ip: ['ip', 'tcp', 'udp', 'icmp'],
  tcp: ['ip', 'tcp'],
  udp: ['ip', 'udp'],
  icmp: ['ip', 'icmp'],
};

export interface CallSite {
  readonly callee: string;
  readonly span: Span;
  readonly guard: Protocol | null;
}

export interface FunctionInfo {
  readonly element: FunctionElement;
  readonly body: IrStatement[];
  readonly calls: CallSite[];
  /** NAT actions it contains directly (not through calls), for W12. */
  readonly natActions: { action: 'dnat' | 'snat'; span: Span }[];
}

interface Scope {
  readonly fn: FunctionElement;
  readonly type: 'filter' | 'nat';
  readonly context: Protocol;
  readonly calls: CallSite[];
  readonly natActions: { action: 'dnat' | 'snat'; span: Span }[];
}

const SWAP: Record<IrCompareOp, IrCompareOp> = { '==': '==', '!=': '!=', '<': '>', '>': '<', '<=': '>=', '>=': '<=' };
const ORDERED: ReadonlySet<FieldType> = new Set(['ipv4', 'port', 'integer']);
const TYPE_WORDS: Record<FieldType, string> = {
  ipv4: 'an IPv4 address',
  port: 'a port',
  protocol: 'an IP protocol',
  'icmp-type': 'an ICMP type',
  'tcp-flags': 'TCP flags',
  'ct-state': 'a conntrack state',
  integer: 'an integer',
};

export class FunctionChecker {
  private readonly ruleCounts = new Map<string, number>();
  /** Where each rule is, for diagnostics about rules found after lowering (W04). */
  readonly ruleSpans = new Map<string, Span>();

  constructor(
    private readonly ctx: ElementContext,
    readonly rules: Record<string, IrRuleSource>,
  ) {}

  check(fn: FunctionElement): FunctionInfo {
    const scope: Scope = { fn, type: fn.type, context: fn.subtype, calls: [], natActions: [] };
    const body = this.statements(fn.decl.body, scope);
    return { element: fn, body, calls: scope.calls, natActions: scope.natActions };
  }

  private statements(statements: readonly A.Statement[], scope: Scope): IrStatement[] {
    const out: IrStatement[] = [];
    for (const s of statements) {
      const lowered = this.statement(s, scope);
      if (lowered) out.push(lowered);
    }
    return out;
  }

  private statement(s: A.Statement, scope: Scope): IrStatement | undefined {
    switch (s.kind) {
      case 'Function':
        return this.nested(s, scope);
      case 'If':
        return this.ifStatement(s, scope);
      case 'Action':
        return this.action(s, scope);
    }
  }

  private rule(scope: Scope, text: string, span: Span): string {
    const base = `${scope.fn.name}:${fnv1a(text)}`;
    const n = (this.ruleCounts.get(base) ?? 0) + 1;
    this.ruleCounts.set(base, n);
    const id = n === 1 ? base : `${base}.${n}`;
    this.ruleSpans.set(id, span);
    this.rules[id] = {
      function: scope.fn.name,
      text,
      file: span.file,
      line: span.startLine,
      column: span.startColumn,
      endLine: span.endLine,
      endColumn: span.endColumn,
    };
    return id;
  }

  private nested(s: A.FunctionDecl, scope: Scope): IrStatement | undefined {
    const type = s.type.text.toLowerCase();
    if (type !== scope.type) {
      this.ctx.report('E609', s.type.span, `You cannot create a function of type ${s.type.text} inside a function of type ${cap(scope.type)}`);
      return undefined;
    }
    const subtype = s.subtype.text.toLowerCase();
    if (!SUBTYPES.has(subtype)) {
      this.ctx.diagnostics.push(unknownSubtype(s.subtype));
      return undefined;
    }
    const sub = subtype as Protocol;
    if (!ALLOWED[scope.context].includes(sub)) {
      this.ctx.report('E608', s.subtype.span, `You cannot create a function of subtype ${s.subtype.text.toUpperCase()} inside a function of subtype ${scope.context.toUpperCase()}`);
      return undefined;
    }
    const inner: Scope = { ...scope, context: sub === 'ip' ? scope.context : sub };
    const rule = this.rule(scope, `${s.type.text}::${s.subtype.text}${s.name ? ' ' + s.name.text : ''}`, headerSpan(s));
    const body = this.statements(s.body, inner);
    return { kind: 'block', guard: sub !== 'ip' && sub !== scope.context ? sub : null, body, rule };
  }

  private ifStatement(s: A.IfStatement, scope: Scope): IrStatement | undefined {
    const rule = this.rule(scope, `if (${conditionText(s.condition)})`, s.condition.span);
    const condition = this.condition(s.condition, scope);
    const then = this.statements(s.then, scope);
    const otherwise = s.else ? this.statements(s.else, scope) : null;
    if (!condition) return undefined;
    return { kind: 'if', condition, then, else: otherwise, rule };
  }

  private action(s: A.Action, scope: Scope): IrStatement | undefined {
    const name = s.name.text.toLowerCase();
    const text = s.args === null ? s.name.text : `${s.name.text}(${s.args.map(inlineValue).join(', ')})`;
    if (ACTIONS.has(name)) {
      const legal = scope.type === 'filter' ? ['accept', 'drop', 'log', 'syslog'] : ['dnat', 'snat', 'log', 'syslog'];
      if (!legal.includes(name)) {
        return this.ctx.report('E604', s.span, `Error transpiling action ${s.name.text}: Legal actions for a function of type ${cap(scope.type)} are: ${legal.join(', ')}`);
      }
      const rule = this.rule(scope, text, s.span);
      switch (name) {
        case 'accept':
        case 'drop':
          if (s.args && s.args.length > 0) return this.ctx.report('E605', s.span, `An ${name} action takes no parameters`);
          return { kind: 'verdict', verdict: name, rule };
        case 'log': {
          if (!s.args || s.args.length === 0) return this.ctx.report('E616', s.span, 'log needs at least one argument', { help: 'log("text", ip.saddr, "\\n")' });
          const args = this.logArgs(s.args, scope);
          return args && { kind: 'log', args, rule };
        }
        case 'syslog':
          return this.syslog(s, scope, rule);
        default:
          return this.nat(s, name as 'dnat' | 'snat', scope, rule);
      }
    }
    return this.call(s, scope, text);
  }

  private syslog(s: A.Action, scope: Scope, rule: string): IrStatement | undefined {
    const args = s.args ?? [];
    if (args.length < 2) return this.ctx.report('E611', s.span, `Too few arguments (syslog takes at least 2, got ${args.length})`, { help: 'syslog(INFO, "message ", ip.saddr)' });
    const first = args[0]!;
    const word = first.kind === 'Name' && first.parts.length === 1 ? first.parts[0]!.text.toLowerCase() : undefined;
    const severity = word === undefined ? -1 : (SYSLOG_SEVERITIES as readonly string[]).indexOf(word);
    if (severity < 0) {
      const suggestion = word ? closest(word, SYSLOG_SEVERITIES) : undefined;
      return this.ctx.report('E612', first.span, `Invalid syslog severity level. Valid severity levels are: ${SYSLOG_SEVERITIES.join(', ')}`, {
        help: suggestion ? `did you mean ${suggestion}?` : 'write the word without quotes',
      });
    }
    const rest = this.logArgs(args.slice(1), scope);
    return rest && { kind: 'syslog', severity, args: rest, rule };
  }

  private logArgs(args: readonly A.Value[], scope: Scope): IrLogArg[] | undefined {
    const out: IrLogArg[] = [];
    let ok = true;
    for (const arg of args) {
      if (arg.kind === 'String') {
        out.push({ kind: 'text', text: arg.value });
        continue;
      }
      if (arg.kind === 'Name' && arg.parts.length > 1 && !this.ctx.namespace.elements.has(arg.parts[0]!.text)) {
        const r = this.ctx.resolver.resolve(arg, { inFunction: true });
        if (!r) {
          ok = false;
          continue;
        }
        if (r.kind === 'field') {
          const field = this.fieldIn(r, scope);
          if (field) out.push({ kind: 'field', field: field.field });
          else ok = false;
          continue;
        }
      }
      if (arg.kind === 'Name' && arg.parts.length > 1) {
        this.ctx.report('E610', arg.span, `${arg.parts[0]!.text} is not a valid protocol: this value can not be printed`, { help: 'log prints strings and packet fields' });
      } else {
        this.ctx.report('E610', arg.span, `This value can not be printed: ${inlineValue(arg)}`, { help: 'log prints strings and packet fields; put text in quotes' });
      }
      ok = false;
    }
    return ok ? out : undefined;
  }

  private nat(s: A.Action, action: 'dnat' | 'snat', scope: Scope, rule: string): IrStatement | undefined {
    const args = s.args ?? [];
    if (args.length === 0) return this.ctx.report('E613', s.span, `No arguments provided to ${action}`, { help: `${action}(ADDRESS), ${action}(PORT) or ${action}(ADDRESS, PORT)` });
    if (args.length > 2) return this.ctx.report('E617', args[2]!.span, `${action} takes one or two arguments: an address, a port, or an address and a port`);
    const values = args.map((a) => this.ctx.resolver.resolve(a, { inFunction: false }));
    if (values.some((v) => !v)) return undefined;
    let address: string | null = null;
    let port: number | null = null;
    const asPort = (v: RValue): number | undefined =>
      v.kind === 'constant' && v.info.group === 'port' ? v.info.value : v.kind === 'integer' && v.value >= 1 && v.value <= 65535 ? v.value : undefined;
    if (values.length === 1) {
      const v = values[0]!;
      if (v.kind === 'ipv4') address = v.text;
      else if (asPort(v) !== undefined) port = asPort(v)!;
      else return this.ctx.report('E617', v.span, `${action} needs an IPv4 address or a port (1-65535), not ${describe(v)}`);
    } else {
      const [a, p] = values as [RValue, RValue];
      if (a.kind !== 'ipv4') return this.ctx.report('E617', a.span, `the first argument of ${action} must be an IPv4 address, not ${describe(a)}`);
      if (asPort(p) === undefined) return this.ctx.report('E617', p.span, `the second argument of ${action} must be a port (1-65535), not ${describe(p)}`);
      address = a.text;
      port = asPort(p)!;
    }
    if (port !== null && scope.context === 'icmp') {
      return this.ctx.report('E617', s.span, `${action} with a port cannot be used on ICMP packets`, { help: `${action}(ADDRESS) rewrites the address only` });
    }
    scope.natActions.push({ action, span: s.span });
    return { kind: 'nat', action, address, port, rule };
  }

  private call(s: A.Action, scope: Scope, text: string): IrStatement | undefined {
    const callee = this.ctx.namespace.elements.get(s.name.text);
    if (!callee || callee.kind !== 'function') {
      const functions = [...this.ctx.namespace.elements.values()].filter((e) => e.kind === 'function').map((e) => e.name);
      const suggestion = closest(s.name.text, [...functions, ...ACTIONS]);
      return this.ctx.report('E603', s.name.span, `Couldn't identify action or function name ${s.name.text}`, {
        help: suggestion ? `did you mean ${suggestion}?` : undefined,
      });
    }
    this.ctx.resolver.used.add(callee.name);
    if (s.args && s.args.length > 0) return this.ctx.report('E606', s.span, 'A function call takes no parameters');
    if (callee.type !== scope.type) {
      return this.ctx.report('E607', s.span, `Error transpiling call to ${callee.name}: A function of type ${cap(scope.type)} can only call functions of the same type`);
    }
    if (!ALLOWED[scope.context].includes(callee.subtype)) {
      return this.ctx.report('E608', s.span, `Cannot call a function of subtype ${callee.subtype.toUpperCase()} inside a function of subtype ${scope.context.toUpperCase()}`);
    }
    const guard = callee.subtype !== 'ip' && callee.subtype !== scope.context ? callee.subtype : null;
    scope.calls.push({ callee: callee.name, span: s.span, guard });
    return { kind: 'call', function: callee.name, guard, rule: this.rule(scope, text, s.span) };
  }

  condition(c: A.Condition, scope: Scope): IrExpr | undefined {
    switch (c.kind) {
      case 'Logical': {
        const left = this.condition(c.left, scope);
        const right = this.condition(c.right, scope);
        return left && right ? { kind: c.operator, left, right } : undefined;
      }
      case 'Not': {
        const operand = this.condition(c.operand, scope);
        return operand && { kind: 'not', operand };
      }
      case 'Group':
        return this.condition(c.inner, scope);
      case 'ValueCondition': {
        const r = this.ctx.resolver.resolve(c.value, { inFunction: true });
        if (!r) return undefined;
        if (isSet(r)) return this.ctx.report('E708', c.span, `${describe(r)} cannot be used as a condition`, { help: 'compare a field with it: field in set' });
        if (r.kind !== 'boolean') return this.ctx.report('E710', c.span, `a condition must be true or false, not ${describe(r)}`);
        this.ctx.report('W05', c.span, `the condition is always ${r.value}`);
        return { kind: 'const', value: r.value };
      }
      case 'Comparison':
        return this.comparison(c, scope);
    }
  }

  private comparison(c: A.Comparison, scope: Scope): IrExpr | undefined {
    const left = this.ctx.resolver.resolve(c.left, { inFunction: true });
    const right = this.ctx.resolver.resolve(c.right, { inFunction: true });
    if (!left || !right) return undefined;
    const op = c.operator;
    if (right.kind === 'cidr' && op !== 'in') {
      return this.ctx.report('E704', c.operatorSpan, `Invalid operator (${c.operatorText}). Only the 'in' operator is valid when comparing a property to a range, cidr, list or object`);
    }
    if (isSet(right) && op !== 'in') {
      return this.ctx.report('E705', c.operatorSpan, `Invalid operator (${c.operatorText}). Only the 'in' operator is valid when comparing a value to a range, cidr, list or object`);
    }
    if (op === 'in' && !isSet(right)) {
      return this.ctx.report('E706', c.operatorSpan, "The 'in' operator can only be used when comparing a property to a range, cidr, list or object", {
        help: `use == to compare with ${describe(right)}`,
      });
    }
    if (isSet(left)) return this.ctx.report('E707', left.span, 'The left hand side of a comparison can not resolve to a set of values, e.g. a range, cidr, list or object');

    const lf = left.kind === 'field' ? this.fieldIn(left, scope) : undefined;
    if (left.kind === 'field' && !lf) return undefined;
    const rf = right.kind === 'field' ? this.fieldIn(right, scope) : undefined;
    if (right.kind === 'field' && !rf) return undefined;

    if (op === 'in') {
      if (!lf) {
        this.ctx.report('W05', c.span, 'the comparison involves no packet field: it is constant');
        return this.constantIn(left, right);
      }
      return this.membership(lf, left.span, right, c);
    }
    if (lf && rf) {
      if (lf.type !== rf.type) return this.ctx.report('E709', c.span, `cannot compare ${left.kind === 'field' ? left.text : ''} (${TYPE_WORDS[lf.type]}) with ${right.kind === 'field' ? right.text : ''} (${TYPE_WORDS[rf.type]})`);
      if (op !== '==' && op !== '!=' && !ORDERED.has(lf.type)) return this.ctx.report('E709', c.operatorSpan, `${TYPE_WORDS[lf.type]} can only be compared with == and !=`);
      return { kind: 'compare-fields', op, left: lf.field, right: rf.field };
    }
    if (!lf && !rf) {
      this.ctx.report('W05', c.span, 'the comparison involves no packet field: it is constant');
      const a = constantNumber(left);
      const b = constantNumber(right);
      if (a === undefined || b === undefined) return this.ctx.report('E709', c.span, `cannot compare ${describe(left)} with ${describe(right)}`);
      return { kind: 'const', value: compareNumbers(op, a, b) };
    }
    const field = (lf ?? rf)!;
    const fieldValue = lf ? left : right;
    const other = lf ? right : left;
    const normalized: IrCompareOp = lf ? op : SWAP[op];
    if (normalized !== '==' && normalized !== '!=' && !ORDERED.has(field.type)) {
      return this.ctx.report('E709', c.operatorSpan, `${fieldValue.kind === 'field' ? fieldValue.text : ''} is ${TYPE_WORDS[field.type]}: it can only be compared with == and !=`);
    }
    const n = this.scalarFor(field, fieldValue, other);
    if (n === undefined) return undefined;
    this.neverTrue(field, n, c);
    return { kind: 'compare', op: normalized, field: field.field, value: n };
  }

  private membership(field: FieldInfo, fieldSpan: Span, set: RValue, c: A.Comparison): IrExpr | undefined {
    const ranges: [number, number][] = [];
    let ok = true;
    const fieldValue: RValue = { kind: 'field', info: field, text: field.field, span: fieldSpan };
    for (const member of flatten(set)) {
      if (member.kind === 'cidr') {
        if (field.type !== 'ipv4') {
          ok = this.mismatch(field, member) && false;
          continue;
        }
        const size = 2 ** (32 - member.prefix);
        ranges.push([member.net, member.net + size - 1]);
      } else if (member.kind === 'range') {
        const allowRange = field.type === 'ipv4' ? member.from.kind === 'ipv4' : ['port', 'icmp-type', 'integer'].includes(field.type) && member.from.kind === 'integer';
        if (!allowRange) {
          ok = this.mismatch(field, member) && false;
          continue;
        }
        const lo = this.scalarFor(field, fieldValue, member.from);
        const hi = this.scalarFor(field, fieldValue, member.to);
        if (lo === undefined || hi === undefined) ok = false;
        else ranges.push([lo, hi]);
      } else {
        const n = this.scalarFor(field, fieldValue, member);
        if (n === undefined) ok = false;
        else {
          this.neverTrue(field, n, c);
          ranges.push([n, n]);
        }
      }
    }
    if (!ok) return undefined;
    return { kind: 'in', field: field.field, ranges: mergeRanges(ranges) };
  }

  private mismatch(field: FieldInfo, value: RValue): false {
    this.ctx.report('E709', value.span, `${field.field} is ${TYPE_WORDS[field.type]} and cannot be compared with ${describe(value)}`);
    return false;
  }

  /** The number a scalar denotes when compared with `field`, or a type error. */
  private scalarFor(field: FieldInfo, _fieldValue: RValue, v: RValue): number | undefined {
    const group = CONSTANT_GROUP_OF[field.type];
    if (v.kind === 'constant') {
      if (v.info.group === group) return v.info.value;
      return this.ctx.report('E709', v.span, `${field.field} is ${TYPE_WORDS[field.type]} and cannot be compared with ${describe(v)}`, {
        help: group ? `use a number or a constant of the right kind` : undefined,
      }) as undefined;
    }
    if (field.type === 'ipv4') {
      if (v.kind === 'ipv4') return v.value;
      this.mismatch(field, v);
      return undefined;
    }
    if (field.type === 'ct-state') {
      this.mismatch(field, v);
      return undefined;
    }
    if (v.kind !== 'integer') {
      this.mismatch(field, v);
      return undefined;
    }
    if (v.value < 0 || v.value > field.max) {
      return this.ctx.report('E413', v.span, `${v.value} is out of range for ${field.field} (0-${field.max})`) as undefined;
    }
    return v.value;
  }

  private neverTrue(field: FieldInfo, n: number, c: A.Comparison): void {
    if (field.field === 'tcp.flags' && n === 0x100) this.ctx.report('W06', c.span, 'tcp.flags is the flag byte CWR..FIN: ns is not in it, so this never matches');
    if (field.field === 'ct.state' && n === CT_STATE.invalid) {
      this.ctx.report('W06', c.span, 'ct.state is never invalid in a rule: packets without a conntrack entry are dropped before any function runs');
    }
  }

  private constantIn(left: RValue, set: RValue): IrExpr | undefined {
    const n = constantNumber(left);
    if (n === undefined) return this.ctx.report('E709', left.span, `cannot test ${describe(left)} for membership`);
    for (const m of flatten(set)) {
      if (m.kind === 'cidr' && left.kind === 'ipv4' && n >= m.net && n < m.net + 2 ** (32 - m.prefix)) return { kind: 'const', value: true };
      if (m.kind === 'range' && n >= m.from.value && n <= m.to.value) return { kind: 'const', value: true };
      if (constantNumber(m) === n) return { kind: 'const', value: true };
    }
    return { kind: 'const', value: false };
  }

  /** A field legal in this context, or E701. */
  private fieldIn(r: RValue & { kind: 'field' }, scope: Scope): FieldInfo | undefined {
    if (r.info.protocol !== 'ip' && r.info.protocol !== scope.context) {
      return this.ctx.report('E701', r.span, `A function of subtype ${scope.context.toUpperCase()} cannot test on ${r.info.protocol} properties`, {
        help: `wrap it in Filter::${r.info.protocol.toUpperCase()} { ... } (or Nat::${r.info.protocol.toUpperCase()})`,
      });
    }
    return r.info;
  }
}

function constantNumber(v: RValue): number | undefined {
  switch (v.kind) {
    case 'integer':
    case 'decimal':
    case 'ipv4':
      return v.value;
    case 'constant':
      return v.info.value;
    default:
      return undefined;
  }
}

/** `a OP b` for the IR's comparison operators. */
export function compareNumbers(op: IrCompareOp, a: number, b: number): boolean {
  switch (op) {
    case '==':
      return a === b;
    case '!=':
      return a !== b;
    case '<':
      return a < b;
    case '>':
      return a > b;
    case '<=':
      return a <= b;
    case '>=':
      return a >= b;
  }
}

/** Sorted, non-overlapping, non-adjacent inclusive ranges. */
export function mergeRanges(ranges: [number, number][]): [number, number][] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const out: [number, number][] = [];
  for (const [lo, hi] of sorted) {
    const last = out[out.length - 1];
    if (last && lo <= last[1] + 1) last[1] = Math.max(last[1], hi);
    else out.push([lo, hi]);
  }
  return out;
}

function cap(s: string): string {
  return s[0]!.toUpperCase() + s.slice(1);
}

function headerSpan(fn: A.FunctionDecl): Span {
  const end = fn.name ?? fn.subtype;
  return { ...fn.type.span, endLine: end.span.endLine, endColumn: end.span.endColumn, endOffset: end.span.endOffset };
}

/** FNV-1a, 32-bit, as 8 hex digits: short, stable rule ids from rule text. */
function fnv1a(text: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return (h >>> 0).toString(16).padStart(8, '0');
}

/**
 * Does executing these statements always end in a verdict (7.8)? Follows
 * if/else, unguarded blocks and unguarded calls.
 */
export function alwaysEnds(statements: readonly IrStatement[], functions: ReadonlyMap<string, readonly IrStatement[]>, visiting = new Set<string>()): boolean {
  return statements.some((s) => statementEnds(s, functions, visiting));
}

export function statementEnds(s: IrStatement, functions: ReadonlyMap<string, readonly IrStatement[]>, visiting: Set<string>): boolean {
  switch (s.kind) {
    case 'verdict':
    case 'nat':
      return true;
    case 'if':
      return s.else !== null && alwaysEnds(s.then, functions, visiting) && alwaysEnds(s.else, functions, visiting);
    case 'block':
      return s.guard === null && alwaysEnds(s.body, functions, visiting);
    case 'call': {
      if (s.guard !== null || visiting.has(s.function)) return false;
      const body = functions.get(s.function);
      if (!body) return false;
      visiting.add(s.function);
      const ends = alwaysEnds(body, functions, visiting);
      visiting.delete(s.function);
      return ends;
    }
    default:
      return false;
  }
}

export { nameText, ipv4Text };
