import type { IRecognitionException, IToken, TokenType } from 'chevrotain';
import type { Comment, Program } from './ast.ts';
import { AstBuilder, tokenEnd } from './ast-builder.ts';
import { naclParser } from './parser.ts';
import { LineMap, type Span } from './span.ts';
import { Cidr, Ipv4, naclLexer } from './tokens.ts';
import { diagnostic, sortDiagnostics, type Diagnostic } from '../compiler/diagnostics/diagnostic.ts';

export interface ParseResult {
  readonly program: Program;
  readonly diagnostics: Diagnostic[];
  readonly lines: LineMap;
}

const RESERVED = new Set(['in', 'IN', 'and', 'or', 'not', 'if', 'else', 'true', 'false']);

/**
 * Lexes and parses one NaCl source text. Never throws: every problem is a
 * diagnostic, and the program holds every construct that could be built.
 */
export function parseNacl(text: string, file: string): ParseResult {
  const lines = new LineMap(file, text);
  const diagnostics: Diagnostic[] = [];
  const emptyProgram: Program = { kind: 'Program', file, elements: [], comments: [], span: lines.span(0, text.length) };
  try {
    const lexed = naclLexer.tokenize(text);
    for (const e of lexed.errors) {
      const ch = text.slice(e.offset, e.offset + e.length);
      const shown = JSON.stringify(ch.length > 20 ? ch.slice(0, 20) + '...' : ch);
      diagnostics.push(
        diagnostic('E101', lines.span(e.offset, e.offset + e.length), `character ${shown} is not allowed here`, {
          help: hintForCharacter(ch),
        }),
      );
    }
    const comments = commentsOf(lexed.groups['comments'] ?? [], lines, diagnostics);
    const deep = tooDeep(lexed.tokens, lines);
    if (deep) return { program: { ...emptyProgram, comments }, diagnostics: sortDiagnostics([...diagnostics, deep]), lines };
    const adjacent = adjacentNumbers(lexed.tokens, lines, diagnostics);
    adjacentColons(lexed.tokens, lines, diagnostics);

    const parser = naclParser();
    const builder = new AstBuilder(lines);
    parser.b = builder;
    // The second of two adjacent numbers is already reported (E107); parse as if it were absent.
    parser.input = spacedAddresses(lexed.tokens.filter((t) => !adjacent.has(t)), text, lines, diagnostics);
    // Error recovery may give up on the whole program: no elements, not undefined.
    const elements = parser.program() ?? [];
    for (const e of parser.errors) {
      diagnostics.push(syntaxError(e, lines, text.length));
    }
    const program: Program = { kind: 'Program', file, elements, comments, span: lines.span(0, text.length) };
    diagnostics.push(...builder.diagnostics);
    return { program, diagnostics: sortDiagnostics(dedupe(diagnostics)), lines };
  } catch (err) {
    diagnostics.push(
      diagnostic('E900', lines.span(0, 0), `internal error while parsing: ${(err as Error)?.message ?? String(err)}`, {
        help: 'this is a bug in nacl; please report it with the input that caused it',
      }),
    );
    return { program: emptyProgram, diagnostics, lines };
  }
}

function commentsOf(tokens: IToken[], lines: LineMap, diagnostics: Diagnostic[]): Comment[] {
  return tokens.map((t) => {
    const span = lines.span(t.startOffset, t.startOffset + t.image.length);
    const style = t.image.startsWith('#') ? 'hash' : t.image.startsWith('//') ? 'slashes' : 'block';
    if (t.tokenType.name === 'UnterminatedComment') {
      diagnostics.push(
        diagnostic('E105', lines.span(t.startOffset, t.startOffset + 2), 'unterminated /* comment', {
          help: 'close the comment with */ (comments do not nest)',
        }),
      );
    }
    // Trailing blanks of a line comment carry nothing; dropping them keeps `fmt` output clean.
    const text = style === 'block' ? t.image : t.image.trimEnd();
    return { kind: 'Comment', style, text, span } as const;
  });
}

/** Brackets, parentheses, braces and `not`s open at once; past this a config is not written by hand. */
export const MAX_NESTING = 100;
/** `and`/`or` operators in one parenthesized condition. */
export const MAX_TERMS = 1000;

/**
 * Every later stage walks the tree recursively; a tree deep enough to
 * exhaust the stack is refused here, with a diagnostic, before it is built.
 */
function tooDeep(tokens: IToken[], lines: LineMap): Diagnostic | null {
  let depth = 0;
  let nots = 0;
  const terms = [0];
  for (const t of tokens) {
    const name = t.tokenType.name;
    const at = () => lines.span(t.startOffset, tokenEnd(t));
    if (name === 'Not' || name === 'Bang') nots++;
    else nots = 0;
    if (name === 'LBrace' || name === 'LBracket' || name === 'LParen') {
      depth++;
      if (name === 'LParen') terms.push(0);
    } else if (name === 'RBrace' || name === 'RBracket' || name === 'RParen') {
      depth = Math.max(0, depth - 1);
      if (name === 'RParen' && terms.length > 1) terms.pop();
    } else if (name === 'And' || name === 'Or' || name === 'AndAnd' || name === 'OrOr') {
      const n = ++terms[terms.length - 1]!;
      if (n >= MAX_TERMS) {
        return diagnostic('E113', at(), `a condition of more than ${MAX_TERMS} terms joined by and/or`, {
          help: 'test a field against a set with `in [...]`, or split the rule',
        });
      }
    }
    if (depth + nots > MAX_NESTING) {
      return diagnostic('E113', at(), `nested more than ${MAX_NESTING} levels deep`, { help: 'flatten the nesting: name inner values, or split the function' });
    }
  }
  return null;
}

/** `index: 1 2` meant 12 upstream; we reject it (10.2 row 10). */
function adjacentNumbers(tokens: IToken[], lines: LineMap, diagnostics: Diagnostic[]): Set<IToken> {
  const seen = new Set<IToken>();
  for (let i = 1; i < tokens.length; i++) {
    const a = tokens[i - 1]!;
    const b = tokens[i]!;
    if (a.tokenType.name === 'Integer' && b.tokenType.name === 'Integer') {
      seen.add(b);
      diagnostics.push(
        diagnostic('E107', lines.span(a.startOffset, tokenEnd(b)), `two numbers without an operator: ${a.image} ${b.image}`, {
          help: 'separate list items with commas; a number cannot contain spaces',
        }),
      );
    }
  }
  return seen;
}

const ADDRESS_PARTS = new Set(['Integer', 'Decimal', 'Ipv4', 'MalformedAddress', 'Dot', 'Slash']);

/**
 * `10 . 0 . 0 . 1` and `10.0.0.0 / 24`: upstream read these as one address
 * (10.2 row 7). We report E109, as for dotted names and `::`, and parse the
 * run as the address it spells, so no cascade of "unexpected '.'" follows.
 */
function spacedAddresses(tokens: IToken[], text: string, lines: LineMap, diagnostics: Diagnostic[]): IToken[] {
  const out: IToken[] = [];
  for (let i = 0; i < tokens.length; i++) {
    const first = tokens[i]!;
    let j = i;
    let spaced = false;
    // `a . b . c . d / p` is 9 tokens at most: a longer run spells no address,
    // and scanning it all from every token would be quadratic.
    while (j + 1 < tokens.length && j - i < 8 && ADDRESS_PARTS.has(tokens[j + 1]!.tokenType.name)) {
      const gap = text.slice(tokenEnd(tokens[j]!), tokens[j + 1]!.startOffset);
      if (!/^[ \t]*$/.test(gap)) break;
      if (gap) spaced = true;
      j++;
    }
    const run = tokens.slice(i, j + 1);
    const image = run.map((t) => t.image).join('');
    const kind = /^\d+\.\d+\.\d+\.\d+$/.test(image) ? Ipv4 : /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(image) ? Cidr : null;
    if (!spaced || !kind || !ADDRESS_PARTS.has(first.tokenType.name) || first.tokenType.name === 'Dot' || first.tokenType.name === 'Slash') {
      out.push(first);
      continue;
    }
    const what = kind === Cidr ? 'CIDR' : 'address';
    diagnostics.push(diagnostic('E109', lines.span(first.startOffset, tokenEnd(tokens[j]!)), `whitespace inside the ${what} ${image}`, { help: `write ${image} without spaces` }));
    out.push({ ...first, image, tokenType: kind, tokenTypeIdx: kind.tokenTypeIdx! });
    i = j;
  }
  return out;
}

/** `Filter : : IP` - upstream allowed spaces inside `::` (10.2 row 7). */
function adjacentColons(tokens: IToken[], lines: LineMap, diagnostics: Diagnostic[]): void {
  for (let i = 1; i < tokens.length; i++) {
    const a = tokens[i - 1]!;
    const b = tokens[i]!;
    if (a.tokenType.name === 'Colon' && b.tokenType.name === 'Colon') {
      diagnostics.push(
        diagnostic('E109', lines.span(a.startOffset, tokenEnd(b)), 'whitespace inside "::"', { help: 'write Type::Subtype without spaces' }),
      );
    }
  }
}

function syntaxError(e: IRecognitionException, lines: LineMap, textLength: number): Diagnostic {
  const t = e.token;
  const atEnd = t.tokenType?.name === 'EOF' || Number.isNaN(t.startOffset);
  const span: Span = atEnd ? lines.span(textLength, textLength) : lines.span(t.startOffset, tokenEnd(t));
  const found = atEnd ? 'the end of the file' : `'${t.image}'`;
  let help: string | undefined;
  if (!atEnd && RESERVED.has(t.image)) help = `'${t.image}' is a reserved word and cannot be used as a name or key`;
  const context = e.context?.ruleStack?.[e.context.ruleStack.length - 1];
  const expected = describeExpectation(e, context);
  if (!help && (context === 'object' || context === 'pair') && t.image === '}') help = 'objects cannot be empty, and there are no trailing commas';
  if (!help && (context === 'list' || context === 'value') && t.image === ']') help = 'lists cannot be empty, and there are no trailing commas';
  if (!help && context === 'block' && t.image === '}') help = 'a body needs at least one statement';
  if (!help && t.image?.startsWith('"') && context === 'pair') help = 'object keys are names, not strings';
  return diagnostic('E102', span, `unexpected ${found}${expected ? `, expected ${expected}` : ''}`, { help });
}

const TOKEN_WORDS: Record<string, string> = {
  RBrace: "'}'",
  LBrace: "'{'",
  RBracket: "']'",
  LBracket: "'['",
  RParen: "')'",
  LParen: "'('",
  Colon: "':'",
  DoubleColon: "'::'",
  Comma: "','",
  Identifier: 'a name',
  Integer: 'a number',
};

const RULE_WORDS: Record<string, string> = {
  toplevel: 'an element, an assignment or a function',
  program: 'an element, an assignment or a function',
  value: 'a value',
  scalar: 'a number or an address',
  scalarOrRange: 'a value',
  statement: 'a statement',
  block: 'a statement',
  condition: 'a condition',
  primaryCondition: 'a condition',
  unaryCondition: 'a condition',
  andCondition: 'a condition',
  compareOperator: 'a comparison operator',
  pair: 'a key',
};

function describeExpectation(e: IRecognitionException, rule: string | undefined): string | undefined {
  // chevrotain's messages name token types ("--> RBrace <--"); translate to what the user typed.
  const m = /-->\s*(\w+)\s*<--/.exec(e.message);
  if (e.name === 'NotAllInputParsedException' || m?.[1] === 'EOF') return RULE_WORDS['toplevel'];
  if (e.name === 'MismatchedTokenException' && m?.[1]) return TOKEN_WORDS[m[1]] ?? m[1];
  return rule ? RULE_WORDS[rule] : undefined;
}

function hintForCharacter(ch: string): string | undefined {
  if (ch === '=') return 'use ":" between a key and its value, or "==" to compare';
  if (ch === '_') return 'names start with a letter';
  if (ch === '&' || ch === '|') return 'logical operators are "&&" and "||" (or "and" and "or")';
  if (ch === ';') return 'statements and members need no terminator';
  if (ch === "'") return 'strings use double quotes';
  return undefined;
}

function dedupe(diagnostics: Diagnostic[]): Diagnostic[] {
  const seen = new Set<string>();
  return diagnostics.filter((d) => {
    const key = `${d.code}:${d.span.startOffset}:${d.span.endOffset}:${d.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

export type { TokenType };
