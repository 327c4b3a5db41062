import type { IToken } from 'chevrotain';
import type * as A from './ast.ts';
import { joinSpans, type LineMap, type Span } from './span.ts';
import { diagnostic, type Diagnostic } from '../compiler/diagnostics/diagnostic.ts';

/*
 * What the parser's actions use to build the AST: spans from tokens, and
 * the literals whose problems are visible only once a lexeme is read
 * (escapes, octets, leading zeros). Recovery can hand the actions missing
 * or inserted tokens, so every helper tolerates them.
 */
export class AstBuilder {
  readonly diagnostics: Diagnostic[] = [];

  constructor(readonly lines: LineMap) {}

  report(d: Diagnostic): void {
    this.diagnostics.push(d);
  }

  /** From the first to the last real token given (in source order). */
  between(first: IToken | undefined, last: IToken | undefined): Span | undefined {
    const a = first && real(first) ? first : last && real(last) ? last : undefined;
    const b = last && real(last) ? last : a;
    if (!a || !b) return undefined;
    return this.lines.span(a.startOffset, tokenEnd(b));
  }

  join(a: Span, b: Span): Span {
    return joinSpans(a, b);
  }

  integer(t: IToken, negative: boolean, span: Span): A.IntegerLiteral {
    if (t.image.length > 1 && t.image.startsWith('0')) {
      this.diagnostics.push(
        diagnostic('W10', this.tokenSpan(t), `leading zero in ${t.image}: read as the decimal number ${Number(t.image)}`, {
          help: `write ${Number(t.image)}`,
        }),
      );
    }
    return { kind: 'Integer', text: t.image, negative, value: (negative ? -1 : 1) * Number(t.image), span };
  }

  ipv4(text: string, span: Span): A.Ipv4Literal {
    const { value, leadingZero, tooBig } = readOctets(text);
    if (leadingZero) {
      this.diagnostics.push(
        diagnostic('E108', span, `leading zero in an octet of ${text}`, {
          help: 'tools disagree on whether 010 is octal or decimal; write the octet without leading zeros',
        }),
      );
    }
    if (tooBig) this.diagnostics.push(diagnostic('E405', span, `IPv4 addr ${text} contains bytes greater than 255`));
    return { kind: 'Ipv4', text, value, span };
  }

  cidr(text: string, span: Span): A.CidrLiteral {
    const [addressText = '', prefixText = ''] = text.split('/');
    const addressSpan = this.lines.span(span.startOffset, span.startOffset + addressText.length);
    const { value, leadingZero, tooBig } = readOctets(addressText);
    // Octets above 255 are reported for the whole CIDR (E406), not for its address.
    if (leadingZero) this.diagnostics.push(diagnostic('E108', addressSpan, `leading zero in an octet of ${addressText}`));
    const address: A.Ipv4Literal = { kind: 'Ipv4', text: addressText, value, span: addressSpan };
    const prefix = Number(prefixText);
    // A leading zero alone is E108's; E406 is for octets above 255 and long prefixes.
    if (tooBig || prefix > 32) {
      const why = prefix > 32 ? `its prefix length ${prefix} is above 32` : 'it contains bytes greater than 255';
      this.diagnostics.push(diagnostic('E406', span, `IPv4 cidr ${text} is invalid: ${why}`));
    }
    return { kind: 'Cidr', text, address, prefix, span };
  }

  string(t: IToken, span: Span): A.StringLiteral {
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

  identifier(t: IToken | undefined): A.Identifier | undefined {
    if (!real(t)) return undefined;
    return { kind: 'Identifier', text: t.image, span: this.tokenSpan(t) };
  }

  tokenSpan(t: IToken): Span {
    return this.lines.span(t.startOffset, tokenEnd(t));
  }
}

/** A dotted quad's value; NaN when an octet has a leading zero or is above 255. */
function readOctets(text: string): { value: number; leadingZero: boolean; tooBig: boolean } {
  const octets = text.split('.');
  const leadingZero = octets.some((o) => o.length > 1 && o.startsWith('0'));
  const tooBig = octets.some((o) => Number(o) > 255);
  const value = leadingZero || tooBig ? Number.NaN : octets.reduce((v, o) => v * 256 + Number(o), 0) >>> 0;
  return { value, leadingZero, tooBig };
}

/** Tokens inserted by error recovery have no position. */
export function real(t: IToken | undefined): t is IToken {
  return t !== undefined && !t.isInsertedInRecovery && !Number.isNaN(t.startOffset) && typeof t.image === 'string';
}

/**
 * Just past a token's last character. The lexer tracks offsets only (the
 * LineMap computes lines), so tokens carry no endOffset of their own.
 */
export function tokenEnd(t: IToken): number {
  return t.startOffset + t.image.length;
}
