import type { CstElement, CstNode, IToken } from 'chevrotain';
import type * as A from './ast.ts';
import { joinSpans, type LineMap, type Span } from './span.ts';
import { diagnostic, type Diagnostic } from '../compiler/diagnostics/diagnostic.ts';

/**
 * Turns chevrotain's concrete syntax tree into the AST, and reports the
 * problems that are visible only once a construct is whole (escapes, octets,
 * `else if`, spaced dotted names). Recovery can leave CST nodes incomplete, so
 * every accessor here tolerates missing children: a node that cannot be built
 * is dropped (its syntax error was already reported by the parser).
 */
export class CstToAst {
  readonly diagnostics: Diagnostic[] = [];

  constructor(private readonly lines: LineMap) {}

  program(node: CstNode, comments: A.Comment[]): A.Program {
    const elements: A.TopLevel[] = [];
    for (const child of nodes(node, 'toplevel')) {
      const element = this.toplevel(child);
      if (element) elements.push(element);
    }
    return {
      kind: 'Program',
      file: this.lines.file,
      elements,
      comments,
      span: this.lines.span(0, this.lines.text.length),
    };
  }

  private toplevel(node: CstNode): A.TopLevel | undefined {
    const fn = first(node, 'functionDecl');
    if (fn) return this.functionDecl(fn);
    const typed = first(node, 'typedInit');
    if (typed) return this.typedInit(typed);
    const assignment = first(node, 'assignment');
    if (assignment) return this.assignment(assignment);
    const integer = token(node, 'Integer');
    if (integer) {
      const value = this.integer(integer, false, this.tokenSpan(integer));
      return { kind: 'StrayNumber', value, span: value.span };
    }
    return undefined;
  }

  private typedInit(node: CstNode): A.TypedInit | undefined {
    const type = this.identifier(token(node, 'type'));
    const name = this.identifier(token(node, 'name'));
    const value = this.value(first(node, 'value'));
    if (!type || !name || !value) return undefined;
    return { kind: 'TypedInit', type, name, value, span: joinSpans(type.span, value.span) };
  }

  private assignment(node: CstNode): A.Assignment | undefined {
    const target = this.dottedName(first(node, 'dottedName'));
    const value = this.value(first(node, 'value'));
    if (!target || !value) return undefined;
    return { kind: 'Assignment', target, value, span: joinSpans(target.span, value.span) };
  }

  private dottedName(node: CstNode | undefined): A.NameRef | undefined {
    if (!node) return undefined;
    const parts = tokens(node, 'Identifier').map((t) => this.identifier(t)).filter(isDefined);
    const dots = tokens(node, 'Dot').filter(real);
    if (parts.length === 0 || parts.length !== dots.length + 1) return undefined;
    // Segments and dots alternate: each must start where the previous one ended.
    const ids = tokens(node, 'Identifier');
    for (let i = 0; i < dots.length; i++) {
      const dot = dots[i]!;
      if (dot.startOffset !== tokenEnd(ids[i]!) || ids[i + 1]!.startOffset !== tokenEnd(dot)) {
        const span = this.lines.span(ids[0]!.startOffset, tokenEnd(ids[ids.length - 1]!));
        const text = parts.map((p) => p.text).join('.');
        this.diagnostics.push(
          diagnostic('E109', span, `whitespace inside the dotted name ${text}`, { help: `write ${text} without spaces` }),
        );
        break;
      }
    }
    return { kind: 'Name', parts, span: joinSpans(parts[0]!.span, parts[parts.length - 1]!.span) };
  }

  private functionDecl(node: CstNode): A.FunctionDecl | undefined {
    const type = this.identifier(token(node, 'type'));
    const subtype = this.identifier(token(node, 'subtype'));
    const name = this.identifier(token(node, 'name')) ?? null;
    const block = first(node, 'block');
    if (!type || !subtype || !block) return undefined;
    const body = this.block(block);
    const bodySpan = this.delimitedSpan(block, 'LBrace', 'RBrace') ?? subtype.span;
    return { kind: 'Function', type, subtype, name, body, bodySpan, span: joinSpans(type.span, bodySpan) };
  }

  private block(node: CstNode): A.Statement[] {
    const statements: A.Statement[] = [];
    for (const child of nodes(node, 'statement')) {
      const statement = this.statement(child);
      if (statement) statements.push(statement);
    }
    return statements;
  }

  private statement(node: CstNode): A.Statement | undefined {
    const fn = first(node, 'functionDecl');
    if (fn) return this.functionDecl(fn);
    const ifNode = first(node, 'ifStatement');
    if (ifNode) return this.ifStatement(ifNode);
    const action = first(node, 'action');
    if (action) return this.action(action);
    return undefined;
  }

  private action(node: CstNode): A.Action | undefined {
    const name = this.identifier(token(node, 'Identifier'));
    if (!name) return undefined;
    const lparen = token(node, 'LParen');
    const rparen = token(node, 'RParen');
    if (!lparen) return { kind: 'Action', name, args: null, span: name.span };
    const args = nodes(node, 'value').map((v) => this.value(v)).filter(isDefined);
    const end = rparen && real(rparen) ? this.tokenSpan(rparen) : args.length ? args[args.length - 1]!.span : this.tokenSpan(lparen);
    return { kind: 'Action', name, args, span: joinSpans(name.span, end) };
  }

  private ifStatement(node: CstNode): A.IfStatement | undefined {
    const ifToken = token(node, 'If');
    if (!ifToken) return undefined;
    const ifSpan = this.tokenSpan(ifToken);
    const bare = first(node, 'bareCondition');
    if (bare) {
      const bareCondition = this.condition(bare);
      this.diagnostics.push(
        diagnostic('E104', bareCondition?.span ?? ifSpan, 'the condition of an if must be in parentheses', {
          help: 'write if (condition) { ... }',
        }),
      );
    }
    const condition = this.condition(first(node, 'condition') ?? bare);
    const thenNode = first(node, 'then');
    if (!condition || !thenNode) return undefined;
    const then = this.block(thenNode);
    let otherwise: A.Statement[] | null = null;
    let end = this.delimitedSpan(thenNode, 'LBrace', 'RBrace') ?? condition.span;
    const elseNode = first(node, 'otherwise');
    const elseIf = first(node, 'elseIf');
    if (elseNode) {
      otherwise = this.block(elseNode);
      end = this.delimitedSpan(elseNode, 'LBrace', 'RBrace') ?? end;
    } else if (elseIf) {
      const nested = this.ifStatement(elseIf);
      const nestedIf = token(elseIf, 'If');
      this.diagnostics.push(
        diagnostic('E103', nestedIf ? this.tokenSpan(nestedIf) : end, '"else if" is not allowed', {
          help: 'write else { if (...) { ... } }',
        }),
      );
      if (nested) {
        otherwise = [nested];
        end = nested.span;
      }
    }
    return { kind: 'If', condition, then, else: otherwise, span: joinSpans(ifSpan, end) };
  }

  private condition(node: CstNode | undefined): A.Condition | undefined {
    if (!node) return undefined;
    return this.logical(node, 'andCondition', ['Or', 'OrOr'], 'or', (n) => this.andCondition(n));
  }

  private andCondition(node: CstNode): A.Condition | undefined {
    return this.logical(node, 'unaryCondition', ['And', 'AndAnd'], 'and', (n) => this.unaryCondition(n));
  }

  /** Left-associative chain `x op x op x`, operands and operators interleaved by offset. */
  private logical(
    node: CstNode,
    operandRule: string,
    operatorTokens: string[],
    operator: 'and' | 'or',
    operand: (n: CstNode) => A.Condition | undefined,
  ): A.Condition | undefined {
    const children = node.children[operandRule];
    // Most conditions have one operand per level: no arrays to build.
    if (children && children.length === 1) return operand(children[0] as CstNode);
    const operands = nodes(node, operandRule).map(operand);
    const operators = operatorTokens.flatMap((t) => tokens(node, t)).sort((a, b) => a.startOffset - b.startOffset);
    let result = operands[0];
    for (let i = 1; i < operands.length; i++) {
      const right = operands[i];
      const op = operators[i - 1];
      if (!result || !right || !op) return result;
      result = { kind: 'Logical', operator, operatorText: op.image, left: result, right, span: joinSpans(result.span, right.span) };
    }
    return result;
  }

  private unaryCondition(node: CstNode): A.Condition | undefined {
    const operand = this.primaryCondition(first(node, 'primaryCondition'));
    const not = token(node, 'Not') ?? token(node, 'Bang');
    if (!operand) return undefined;
    if (!not) return operand;
    return { kind: 'Not', operatorText: not.image, operand, span: joinSpans(this.tokenSpan(not), operand.span) };
  }

  private primaryCondition(node: CstNode | undefined): A.Condition | undefined {
    if (!node) return undefined;
    const inner = first(node, 'condition');
    if (inner) {
      const condition = this.condition(inner);
      const l = token(node, 'LParen');
      const r = token(node, 'RParen');
      if (!condition || !l) return condition;
      const end = r && real(r) ? this.tokenSpan(r) : condition.span;
      return { kind: 'Group', inner: condition, span: joinSpans(this.tokenSpan(l), end) };
    }
    const left = this.value(first(node, 'left'));
    if (!left) return undefined;
    const opNode = first(node, 'compareOperator');
    if (!opNode) return { kind: 'ValueCondition', value: left, span: left.span };
    const opToken = singleToken(opNode);
    const right = this.value(first(node, 'right'));
    if (!opToken || !right) return { kind: 'ValueCondition', value: left, span: left.span };
    const operator = (opToken.image === 'IN' ? 'in' : opToken.image) as A.ComparisonOperator;
    return {
      kind: 'Comparison',
      operator,
      operatorText: opToken.image,
      operatorSpan: this.tokenSpan(opToken),
      left,
      right,
      span: joinSpans(left.span, right.span),
    };
  }

  value(node: CstNode | undefined): A.Value | undefined {
    if (!node) return undefined;
    const object = first(node, 'object');
    if (object) return this.object(object);
    const list = first(node, 'list');
    if (list) return this.list(list);
    const range = first(node, 'scalarOrRange');
    if (range) return this.scalarOrRange(range);
    const name = first(node, 'dottedName');
    if (name) return this.dottedName(name);
    const t = singleToken(node);
    if (!t || !real(t)) return undefined;
    const span = this.tokenSpan(t);
    switch (t.tokenType.name) {
      case 'StringLiteral':
        return this.string(t, span);
      case 'True':
        return { kind: 'Boolean', value: true, span };
      case 'False':
        return { kind: 'Boolean', value: false, span };
      case 'Cidr':
        return this.cidr(t.image, span);
      case 'Ipv6Literal':
        this.diagnostics.push(diagnostic('E112', span, `IPv6 is not supported: ${t.image}`, { help: 'NaCl addresses are IPv4 only' }));
        return undefined;
      case 'MalformedAddress':
        this.diagnostics.push(
          diagnostic('E106', span, `malformed IPv4 address ${t.image}`, { help: 'an IPv4 address has four numbers separated by dots' }),
        );
        return undefined;
      case 'UnterminatedString':
        this.diagnostics.push(diagnostic('E111', span, 'unterminated string', { help: 'close the string with " on the same line' }));
        return undefined;
      default:
        return undefined;
    }
  }

  private object(node: CstNode): A.ObjectLiteral | undefined {
    const pairs: A.Pair[] = [];
    for (const p of nodes(node, 'pair')) {
      const key = this.identifier(token(p, 'Identifier'));
      const value = this.value(first(p, 'value'));
      if (key && value) pairs.push({ kind: 'Pair', key, value, span: joinSpans(key.span, value.span) });
    }
    const span = this.delimitedSpan(node, 'LBrace', 'RBrace');
    if (!span || pairs.length === 0) return undefined;
    return { kind: 'Object', pairs, span };
  }

  private list(node: CstNode): A.ListLiteral | undefined {
    const items = nodes(node, 'value').map((v) => this.value(v)).filter(isDefined);
    const span = this.delimitedSpan(node, 'LBracket', 'RBracket');
    if (!span || items.length === 0) return undefined;
    return { kind: 'List', items, span };
  }

  private scalarOrRange(node: CstNode): A.Value | undefined {
    const from = this.scalar(first(node, 'from'));
    const toNode = first(node, 'to');
    if (!from) return undefined;
    if (!toNode) return from;
    const to = this.scalar(toNode);
    if (!to) return undefined;
    return { kind: 'Range', from, to, span: joinSpans(from.span, to.span) };
  }

  private scalar(node: CstNode | undefined): A.ScalarLiteral | undefined {
    if (!node) return undefined;
    const negative = token(node, 'Minus') !== undefined;
    const t = token(node, 'Integer') ?? token(node, 'Decimal') ?? token(node, 'Ipv4');
    if (!t || !real(t)) return undefined;
    const span = negative ? this.delimitedSpan(node, 'LParen', 'RParen') : this.tokenSpan(t);
    if (!span) return undefined;
    const rparen = token(node, 'RParen');
    if (negative && (!rparen || !real(rparen))) return undefined;
    switch (t.tokenType.name) {
      case 'Integer':
        return this.integer(t, negative, span);
      case 'Decimal':
        return { kind: 'Decimal', text: t.image, negative, value: (negative ? -1 : 1) * Number(t.image), span };
      default:
        return this.ipv4(t.image, span);
    }
  }

  private integer(t: IToken, negative: boolean, span: Span): A.IntegerLiteral {
    if (t.image.length > 1 && t.image.startsWith('0')) {
      this.diagnostics.push(
        diagnostic('W10', this.tokenSpan(t), `leading zero in ${t.image}: read as the decimal number ${Number(t.image)}`, {
          help: `write ${Number(t.image)}`,
        }),
      );
    }
    return { kind: 'Integer', text: t.image, negative, value: (negative ? -1 : 1) * Number(t.image), span };
  }

  private ipv4(text: string, span: Span): A.Ipv4Literal {
    const octets = text.split('.');
    let value = 0;
    let valid = true;
    for (const octet of octets) {
      const n = Number(octet);
      if (n > 255) valid = false;
      if (octet.length > 1 && octet.startsWith('0')) {
        this.diagnostics.push(
          diagnostic('E108', span, `leading zero in an octet of ${text}`, {
            help: 'tools disagree on whether 010 is octal or decimal; write the octet without leading zeros',
          }),
        );
        valid = false;
        break;
      }
      value = value * 256 + n;
    }
    if (octets.some((o) => Number(o) > 255)) {
      this.diagnostics.push(diagnostic('E405', span, `IPv4 addr ${text} contains bytes greater than 255`));
    }
    return { kind: 'Ipv4', text, value: valid ? value >>> 0 : Number.NaN, span };
  }

  private cidr(text: string, span: Span): A.CidrLiteral {
    const [addressText = '', prefixText = ''] = text.split('/');
    const addressSpan = this.lines.span(span.startOffset, span.startOffset + addressText.length);
    const address = this.ipv4Quiet(addressText, addressSpan);
    const prefix = Number(prefixText);
    if (Number.isNaN(address.value) || prefix > 32) {
      const why = prefix > 32 ? `its prefix length ${prefix} is above 32` : 'it contains bytes greater than 255';
      this.diagnostics.push(diagnostic('E406', span, `IPv4 cidr ${text} is invalid: ${why}`));
    }
    return { kind: 'Cidr', text, address, prefix, span };
  }

  /** Like ipv4() but reports leading zeros only (octet range errors are E406 for CIDRs). */
  private ipv4Quiet(text: string, span: Span): A.Ipv4Literal {
    const octets = text.split('.');
    if (octets.some((o) => o.length > 1 && o.startsWith('0'))) {
      this.diagnostics.push(diagnostic('E108', span, `leading zero in an octet of ${text}`));
      return { kind: 'Ipv4', text, value: Number.NaN, span };
    }
    if (octets.some((o) => Number(o) > 255)) return { kind: 'Ipv4', text, value: Number.NaN, span };
    return { kind: 'Ipv4', text, value: octets.reduce((v, o) => v * 256 + Number(o), 0) >>> 0, span };
  }

  private string(t: IToken, span: Span): A.StringLiteral {
    const raw = t.image.slice(1, -1);
    let value = '';
    for (let i = 0; i < raw.length; i++) {
      const c = raw[i]!;
      if (c !== '\\') {
        value += c;
        continue;
      }
      const e = raw[i + 1] ?? '';
      i++;
      if (e === 'n') value += '\n';
      else if (e === 't') value += '\t';
      else if (e === '\\') value += '\\';
      else if (e === '"') value += '"';
      else {
        const at = t.startOffset + 1 + i - 1;
        this.diagnostics.push(
          diagnostic('E110', this.lines.span(at, at + 2), `unknown escape \\${e} in a string`, {
            help: 'the escapes are \\n, \\t, \\\\ and \\"',
          }),
        );
        value += e;
      }
    }
    return { kind: 'String', value, raw, span };
  }

  private identifier(t: IToken | undefined): A.Identifier | undefined {
    if (!t || !real(t)) return undefined;
    return { kind: 'Identifier', text: t.image, span: this.tokenSpan(t) };
  }

  tokenSpan(t: IToken): Span {
    return this.lines.span(t.startOffset, tokenEnd(t));
  }

  /**
   * From a node's opening to its closing bracket. The parser keeps no node
   * locations (they cost an object per rule call); the brackets say it all,
   * except after error recovery, where every token is looked at.
   */
  private delimitedSpan(node: CstNode, open: string, close: string): Span | undefined {
    const first = token(node, open);
    const closing = tokens(node, close);
    const last = closing[closing.length - 1];
    if (first && real(first) && last && real(last)) return this.lines.span(first.startOffset, tokenEnd(last));
    const ts = allTokens(node).filter(real);
    if (ts.length === 0) return undefined;
    return this.lines.span(ts[0]!.startOffset, tokenEnd(ts[ts.length - 1]!));
  }
}

function isDefined<T>(x: T | undefined): x is T {
  return x !== undefined;
}

/** Tokens inserted by error recovery have no position. */
function real(t: IToken): boolean {
  return !t.isInsertedInRecovery && !Number.isNaN(t.startOffset);
}

/**
 * Just past a token's last character. The lexer tracks offsets only (the
 * LineMap computes lines), so tokens carry no endOffset of their own.
 */
export function tokenEnd(t: IToken): number {
  return t.startOffset + t.image.length;
}

function children(node: CstNode, key: string): CstElement[] {
  return node.children[key] ?? [];
}

function nodes(node: CstNode, key: string): CstNode[] {
  return children(node, key).filter((c): c is CstNode => 'children' in c);
}

function first(node: CstNode, key: string): CstNode | undefined {
  const list = node.children[key];
  if (!list) return undefined;
  for (let i = 0; i < list.length; i++) if ('children' in list[i]!) return list[i] as CstNode;
  return undefined;
}

function tokens(node: CstNode, key: string): IToken[] {
  return children(node, key).filter((c): c is IToken => 'image' in c);
}

function token(node: CstNode, key: string): IToken | undefined {
  const list = node.children[key];
  if (!list) return undefined;
  for (let i = 0; i < list.length; i++) if ('image' in list[i]!) return list[i] as IToken;
  return undefined;
}

/** The one token of a node made of a single token (a literal value). */
function singleToken(node: CstNode): IToken | undefined {
  for (const key in node.children) {
    const c = node.children[key]![0];
    if (c && 'image' in c) return c;
  }
  return undefined;
}

/** Every token under a node, in source order. */
function allTokens(node: CstNode): IToken[] {
  const out: IToken[] = [];
  for (const list of Object.values(node.children)) {
    for (const c of list) {
      if ('image' in c) out.push(c);
      else out.push(...allTokens(c));
    }
  }
  return out.sort((a, b) => (a.startOffset || 0) - (b.startOffset || 0));
}
