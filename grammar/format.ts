import type * as A from './ast.ts';

/*
 * The canonical layout of a NaCl file (`nacl fmt`). It prints the AST, so it
 * can only change layout: four-space indentation, one object member and one
 * statement per line, single spaces around operators, and at most one blank
 * line kept wherever the source had one or more. Every comment is kept, in
 * order: a comment on the line where a member ends stays at its end, any
 * other comment is printed on its own line before the next member.
 */

const INDENT = '    ';
const INLINE_LIST_WIDTH = 80;

export function formatProgram(program: A.Program): string {
  return new Formatter(program.comments).program(program);
}

class Formatter {
  private readonly out: string[] = [];
  private next = 0;

  constructor(private readonly comments: readonly A.Comment[]) {}

  program(program: A.Program): string {
    let prevEndLine = 0;
    for (const element of program.elements) {
      const startLine = this.firstLineFrom(element.span);
      if (this.out.length > 0 && startLine - prevEndLine > 1) this.out.push('');
      this.leadingComments(element.span.startOffset, '');
      this.out.push(...this.topLevel(element));
      this.trailingComment(element.span);
      prevEndLine = element.span.endLine;
    }
    const rest = this.comments.slice(this.next);
    if (rest.length > 0 && this.out.length > 0 && rest[0]!.span.startLine - prevEndLine > 1) this.out.push('');
    this.leadingComments(Number.POSITIVE_INFINITY, '');
    return this.out.length === 0 ? '' : this.out.join('\n') + '\n';
  }

  /** The first line of an element, counting comments that lead into it. */
  private firstLineFrom(span: A.Node['span']): number {
    const c = this.comments[this.next];
    return c && c.span.startOffset < span.startOffset ? c.span.startLine : span.startLine;
  }

  private leadingComments(beforeOffset: number, indent: string): void {
    while (this.next < this.comments.length && this.comments[this.next]!.span.startOffset < beforeOffset) {
      this.out.push(indent + this.comments[this.next]!.text);
      this.next++;
    }
  }

  /** A comment starting on the line where `span` ends is appended to the last printed line. */
  private trailingComment(span: A.Node['span']): void {
    const c = this.comments[this.next];
    if (c && c.span.startOffset >= span.endOffset && c.span.startLine === span.endLine && this.out.length > 0) {
      this.out[this.out.length - 1] += ' ' + c.text;
      this.next++;
    }
  }

  private hasCommentsWithin(span: A.Node['span']): boolean {
    const c = this.comments[this.next];
    return c !== undefined && c.span.startOffset < span.endOffset;
  }

  private topLevel(element: A.TopLevel): string[] {
    switch (element.kind) {
      case 'TypedInit':
        return this.withValue(`${element.type.text} ${element.name.text} `, element.value, '');
      case 'Assignment':
        return this.withValue(`${nameText(element.target)}: `, element.value, '');
      case 'Function':
        return this.functionDecl(element, '');
      case 'StrayNumber':
        return [integerText(element.value)];
    }
  }

  /** `head` followed by a value laid out as a block (objects, long lists) or inline. */
  private withValue(head: string, value: A.Value, indent: string, suffix = ''): string[] {
    if (value.kind === 'Object') return this.objectBlock(head, value, indent, suffix);
    if (value.kind === 'List' && this.listNeedsBlock(value, head.length + indent.length)) return this.listBlock(head, value, indent, suffix);
    return [indent + head + inlineValue(value) + suffix];
  }

  private objectBlock(head: string, object: A.ObjectLiteral, indent: string, suffix: string): string[] {
    const lines = [indent + head + '{'];
    const inner = indent + INDENT;
    this.members(
      object.pairs,
      (pair, last) => this.withValue(`${pair.key.text}: `, pair.value, inner, last ? '' : ','),
      inner,
      lines,
    );
    this.flushInto(lines, object.span.endOffset, inner);
    lines.push(indent + '}' + suffix);
    return lines;
  }

  private listBlock(head: string, list: A.ListLiteral, indent: string, suffix: string): string[] {
    const lines = [indent + head + '['];
    const inner = indent + INDENT;
    this.members(list.items, (item, last) => this.withValue('', item, inner, last ? '' : ','), inner, lines);
    this.flushInto(lines, list.span.endOffset, inner);
    lines.push(indent + ']' + suffix);
    return lines;
  }

  private listNeedsBlock(list: A.ListLiteral, column: number): boolean {
    if (list.items.some((i) => i.kind === 'Object' || i.kind === 'List')) return true;
    if (this.hasCommentsWithin(list.span)) return true;
    return column + inlineValue(list).length > INLINE_LIST_WIDTH;
  }

  /** Prints members one per line, keeping single blank lines and comments between them. */
  private members<T extends { span: A.Node['span'] }>(
    items: readonly T[],
    print: (item: T, last: boolean) => string[],
    indent: string,
    lines: string[],
  ): void {
    let prevEndLine = -1;
    items.forEach((item, i) => {
      const startLine = this.firstLineFrom(item.span);
      if (prevEndLine >= 0 && startLine - prevEndLine > 1) lines.push('');
      this.flushInto(lines, item.span.startOffset, indent);
      lines.push(...print(item, i === items.length - 1));
      this.trailingInto(lines, item.span);
      prevEndLine = item.span.endLine;
    });
  }

  private flushInto(lines: string[], beforeOffset: number, indent: string): void {
    while (this.next < this.comments.length && this.comments[this.next]!.span.startOffset < beforeOffset) {
      lines.push(indent + this.comments[this.next]!.text);
      this.next++;
    }
  }

  private trailingInto(lines: string[], span: A.Node['span']): void {
    const c = this.comments[this.next];
    if (!c || c.span.startLine !== span.endLine || c.span.startOffset < span.endOffset) return;
    // A comment after the separating comma still belongs to this member's line.
    lines[lines.length - 1] += ' ' + c.text;
    this.next++;
  }

  private functionDecl(fn: A.FunctionDecl, indent: string): string[] {
    const name = fn.name ? ` ${fn.name.text}` : '';
    const lines = [`${indent}${fn.type.text}::${fn.subtype.text}${name} {`];
    this.body(fn.body, indent + INDENT, lines);
    this.flushInto(lines, fn.bodySpan.endOffset, indent + INDENT);
    lines.push(indent + '}');
    return lines;
  }

  private body(statements: readonly A.Statement[], indent: string, lines: string[]): void {
    this.members(statements, (s) => this.statement(s, indent), indent, lines);
  }

  private statement(s: A.Statement, indent: string): string[] {
    switch (s.kind) {
      case 'Action':
        return [indent + actionText(s)];
      case 'Function':
        return this.functionDecl(s, indent);
      case 'If':
        return this.ifStatement(s, indent);
    }
  }

  private ifStatement(s: A.IfStatement, indent: string): string[] {
    const lines = [`${indent}if (${conditionText(s.condition)}) {`];
    const inner = indent + INDENT;
    this.body(s.then, inner, lines);
    // Comments after the last statement of `then` (up to the else body) stay inside it.
    this.flushInto(lines, s.else?.[0]?.span.startOffset ?? s.span.endOffset, inner);
    if (s.else) {
      lines.push(`${indent}} else {`);
      this.body(s.else, inner, lines);
      this.flushInto(lines, s.span.endOffset, inner);
    }
    lines.push(indent + '}');
    return lines;
  }
}

export function nameText(name: A.NameRef): string {
  return name.parts.map((p) => p.text).join('.');
}

function integerText(n: A.IntegerLiteral): string {
  return n.negative ? `(-${n.text})` : n.text;
}

function scalarText(s: A.ScalarLiteral): string {
  if (s.kind === 'Ipv4') return s.text;
  return s.negative ? `(-${s.text})` : s.text;
}

export function inlineValue(v: A.Value): string {
  switch (v.kind) {
    case 'Integer':
    case 'Decimal':
    case 'Ipv4':
      return scalarText(v);
    case 'Cidr':
      return v.text;
    case 'Range':
      return `${scalarText(v.from)}-${scalarText(v.to)}`;
    case 'String':
      return `"${v.raw}"`;
    case 'Boolean':
      return v.value ? 'true' : 'false';
    case 'Name':
      return nameText(v);
    case 'Object':
      return `{ ${v.pairs.map((p) => `${p.key.text}: ${inlineValue(p.value)}`).join(', ')} }`;
    case 'List':
      return `[${v.items.map(inlineValue).join(', ')}]`;
  }
}

export function conditionText(c: A.Condition): string {
  switch (c.kind) {
    case 'Comparison':
      return `${inlineValue(c.left)} ${c.operatorText} ${inlineValue(c.right)}`;
    case 'Logical':
      return `${conditionText(c.left)} ${c.operatorText} ${conditionText(c.right)}`;
    case 'Not':
      return c.operatorText === '!' ? `!${conditionText(c.operand)}` : `not ${conditionText(c.operand)}`;
    case 'Group':
      return `(${conditionText(c.inner)})`;
    case 'ValueCondition':
      return inlineValue(c.value);
  }
}

function actionText(a: A.Action): string {
  if (a.args === null) return a.name.text;
  return `${a.name.text}(${a.args.map(inlineValue).join(', ')})`;
}
