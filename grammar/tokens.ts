import { createToken, Lexer, type TokenType } from 'chevrotain';

/*
 * Tokens of the NaCl language (nacl-language.md section 2). Addresses, CIDRs
 * and `::` are single lexemes; whitespace inside them is reported by the
 * parser's targeted checks rather than silently accepted (10.2 row 7).
 */

export const WhiteSpace = createToken({ name: 'WhiteSpace', pattern: /[ \t\r\n]+/, group: Lexer.SKIPPED });
export const BlockComment = createToken({ name: 'BlockComment', pattern: /\/\*[\s\S]*?\*\//, group: 'comments', line_breaks: true });
/** A `/*` with no closing `*\/`: kept as a comment so nothing is lost, reported as E105. */
export const UnterminatedComment = createToken({ name: 'UnterminatedComment', pattern: /\/\*[\s\S]*/, group: 'comments', line_breaks: true });
export const LineComment = createToken({ name: 'LineComment', pattern: /(?:#|\/\/)[^\r\n]*/, group: 'comments' });

/** A string lexeme; escapes are checked by the parser (10.2 row 9). */
export const StringLiteral = createToken({ name: 'StringLiteral', pattern: /"(?:[^"\\\r\n]|\\[^\r\n])*"/ });
/** A string cut by a line break or the end of input (E111). */
export const UnterminatedString = createToken({ name: 'UnterminatedString', pattern: /"(?:[^"\\\r\n]|\\[^\r\n])*\\?/ });

/** Something shaped like an IPv6 address (hex groups and two or more colons): E112. */
const ipv6Shape = /[0-9A-Fa-f]*(?::[0-9A-Fa-f]*){2,}/y;
export const Ipv6Literal = createToken({
  name: 'Ipv6Literal',
  pattern: {
    exec(text: string, offset: number): RegExpExecArray | null {
      ipv6Shape.lastIndex = offset;
      const m = ipv6Shape.exec(text);
      if (!m || !/[0-9A-Fa-f]/.test(m[0])) return null;
      const next = text.charCodeAt(offset + m[0].length);
      // `Filter::IP` is a type, `::`, a subtype: never an address - not even
      // `Filter::a`, whose `::a` alone has the shape of one.
      if (/[A-Za-z0-9_-]/.test(String.fromCharCode(next))) return null;
      if (m[0].startsWith(':') && offset > 0 && /[A-Za-z0-9_]/.test(text[offset - 1]!)) return null;
      return m;
    },
  },
  line_breaks: false,
  start_chars_hint: [...'0123456789abcdefABCDEF:'],
});
/** Digit groups joined by dots that are neither a decimal (2 groups) nor an address (4): E106. */
export const MalformedAddress = createToken({
  name: 'MalformedAddress',
  pattern: /\d+\.\d+\.\d+(?:\.\d+){2,}(?:\/\d+)?|\d+\.\d+\.\d+(?:\/\d+)?(?!\.?\d)/,
  start_chars_hint: [...'0123456789'],
});
export const Cidr = createToken({ name: 'Cidr', pattern: /\d+\.\d+\.\d+\.\d+\/\d+/ });
export const Ipv4 = createToken({ name: 'Ipv4', pattern: /\d+\.\d+\.\d+\.\d+/ });
export const Decimal = createToken({ name: 'Decimal', pattern: /\d+\.\d+/ });
export const Integer = createToken({ name: 'Integer', pattern: /\d+/ });

export const Identifier = createToken({ name: 'Identifier', pattern: /[A-Za-z][A-Za-z0-9_-]*/ });

function keyword(name: string, pattern: RegExp): TokenType {
  return createToken({ name, pattern, longer_alt: Identifier });
}
export const In = keyword('In', /in|IN/);
export const And = keyword('And', /and/);
export const Or = keyword('Or', /or/);
export const Not = keyword('Not', /not/);
export const If = keyword('If', /if/);
export const Else = keyword('Else', /else/);
export const True = keyword('True', /true/);
export const False = keyword('False', /false/);

export const AndAnd = createToken({ name: 'AndAnd', pattern: /&&/ });
export const OrOr = createToken({ name: 'OrOr', pattern: /\|\|/ });
export const EqualEqual = createToken({ name: 'EqualEqual', pattern: /==/ });
export const NotEqual = createToken({ name: 'NotEqual', pattern: /!=/ });
export const LessEqual = createToken({ name: 'LessEqual', pattern: /<=/ });
export const GreaterEqual = createToken({ name: 'GreaterEqual', pattern: />=/ });
export const Less = createToken({ name: 'Less', pattern: /</ });
export const Greater = createToken({ name: 'Greater', pattern: />/ });
export const Bang = createToken({ name: 'Bang', pattern: /!/ });
export const DoubleColon = createToken({ name: 'DoubleColon', pattern: /::/ });
export const Colon = createToken({ name: 'Colon', pattern: /:/ });
export const Comma = createToken({ name: 'Comma', pattern: /,/ });
export const Dot = createToken({ name: 'Dot', pattern: /\./ });
export const Slash = createToken({ name: 'Slash', pattern: /\// });
export const Minus = createToken({ name: 'Minus', pattern: /-/ });
export const LBrace = createToken({ name: 'LBrace', pattern: /\{/ });
export const RBrace = createToken({ name: 'RBrace', pattern: /\}/ });
export const LBracket = createToken({ name: 'LBracket', pattern: /\[/ });
export const RBracket = createToken({ name: 'RBracket', pattern: /\]/ });
export const LParen = createToken({ name: 'LParen', pattern: /\(/ });
export const RParen = createToken({ name: 'RParen', pattern: /\)/ });

/** Lexing order matters: comments before `/`, longest forms before their prefixes. */
export const allTokens: TokenType[] = [
  WhiteSpace,
  BlockComment,
  UnterminatedComment,
  LineComment,
  StringLiteral,
  UnterminatedString,
  Ipv6Literal,
  MalformedAddress,
  Cidr,
  Ipv4,
  Decimal,
  Integer,
  In,
  And,
  Or,
  Not,
  If,
  Else,
  True,
  False,
  Identifier,
  AndAnd,
  OrOr,
  EqualEqual,
  NotEqual,
  LessEqual,
  GreaterEqual,
  Less,
  Greater,
  Bang,
  DoubleColon,
  Colon,
  Comma,
  Dot,
  Slash,
  Minus,
  LBrace,
  RBrace,
  LBracket,
  RBracket,
  LParen,
  RParen,
];

export const naclLexer = new Lexer(allTokens, { positionTracking: 'onlyOffset', ensureOptimizations: false });
