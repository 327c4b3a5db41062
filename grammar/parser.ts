import { EmbeddedActionsParser, type IToken, type TokenType } from 'chevrotain';
import type * as A from './ast.ts';
import { AstBuilder, real, tokenEnd } from './ast-builder.ts';
import { LineMap } from './span.ts';
import * as T from './tokens.ts';
import { diagnostic } from '../compiler/diagnostics/diagnostic.ts';

/*
 * The NaCl grammar (nacl-language.md section 3) as a chevrotain parser with
 * embedded actions: each rule reads like the EBNF and returns its AST node
 * directly. (A concrete syntax tree and a visitor cost three times as much
 * for large configs; the actions are small.) Two deliberate extras parse
 * common mistakes (`else if`, `if` without parentheses) so they get a
 * targeted message instead of "unexpected token". Actions run only while
 * parsing, never during chevrotain's grammar recording, and tolerate the
 * missing pieces error recovery leaves.
 */

type Maybe<T> = T | undefined;

export class NaclParser extends EmbeddedActionsParser {
  /** Set for each parse. */
  b = new AstBuilder(new LineMap('', ''));

  constructor() {
    super(T.allTokens, { recoveryEnabled: true, maxLookahead: 3 });
    this.performSelfAnalysis();
  }

  /*
   * Error recovery may delete one stray token when the token after it is the
   * expected one. Deleting a closing bracket merges the next element into an
   * unfinished object (`b: {}` would swallow the following `c: 2`), so
   * brackets are never deleted: the parser re-syncs at the bracket instead.
   */
  override canTokenTypeBeDeletedInRecovery(_expected: TokenType): boolean {
    // chevrotain passes the expected type; the token that would be deleted is LA(1).
    const doomed = this.LA(1).tokenType;
    return doomed !== T.RBrace && doomed !== T.RBracket && doomed !== T.RParen && doomed !== T.LBrace;
  }

  program = this.RULE('program', (): A.TopLevel[] => {
    const elements: A.TopLevel[] = [];
    this.MANY(() => {
      const e = this.SUBRULE(this.toplevel);
      this.ACTION(() => e && elements.push(e));
    });
    return elements;
  });

  toplevel = this.RULE('toplevel', (): Maybe<A.TopLevel> =>
    this.OR([
      { ALT: () => this.SUBRULE(this.functionDecl) },
      { ALT: () => this.SUBRULE(this.typedInit) },
      { ALT: () => this.SUBRULE(this.assignment) },
      {
        ALT: () => {
          const t = this.CONSUME(T.Integer);
          return this.ACTION((): Maybe<A.StrayNumber> => {
            if (!real(t)) return undefined;
            const value = this.b.integer(t, false, this.b.tokenSpan(t));
            return { kind: 'StrayNumber', value, span: value.span };
          });
        },
      },
    ]),
  );

  typedInit = this.RULE('typedInit', (): Maybe<A.TypedInit> => {
    const typeToken = this.CONSUME(T.Identifier);
    const nameToken = this.CONSUME2(T.Identifier);
    const value = this.SUBRULE(this.value);
    return this.ACTION(() => {
      const type = this.b.identifier(typeToken);
      const name = this.b.identifier(nameToken);
      if (!type || !name || !value) return undefined;
      return { kind: 'TypedInit', type, name, value, span: this.b.join(type.span, value.span) };
    });
  });

  assignment = this.RULE('assignment', (): Maybe<A.Assignment> => {
    const target = this.SUBRULE(this.dottedName);
    this.CONSUME(T.Colon);
    const value = this.SUBRULE(this.value);
    return this.ACTION(() => (target && value ? { kind: 'Assignment', target, value, span: this.b.join(target.span, value.span) } : undefined));
  });

  dottedName = this.RULE('dottedName', (): Maybe<A.NameRef> => {
    const ids: IToken[] = [this.CONSUME(T.Identifier)];
    const dots: IToken[] = [];
    this.MANY(() => {
      dots.push(this.CONSUME(T.Dot));
      ids.push(this.CONSUME2(T.Identifier));
    });
    return this.ACTION(() => {
      if (!ids.every(real) || !dots.every(real)) return undefined;
      const parts = ids.map((t) => this.b.identifier(t)!);
      // Segments and dots alternate: each must start where the previous one
      // ended. A gap of characters the lexer refused (E101, `m._a`) is not whitespace.
      const gap = (from: number, to: number) => /\s|\/\*|\/\/|#/.test(this.b.lines.text.slice(from, to));
      for (let i = 0; i < dots.length; i++) {
        if (gap(tokenEnd(ids[i]!), dots[i]!.startOffset) || gap(tokenEnd(dots[i]!), ids[i + 1]!.startOffset)) {
          const text = parts.map((p) => p.text).join('.');
          this.b.report(
            diagnostic('E109', this.b.between(ids[0], ids[ids.length - 1])!, `whitespace inside the dotted name ${text}`, { help: `write ${text} without spaces` }),
          );
          break;
        }
      }
      return { kind: 'Name', parts, span: this.b.join(parts[0]!.span, parts[parts.length - 1]!.span) };
    });
  });

  functionDecl = this.RULE('functionDecl', (): Maybe<A.FunctionDecl> => {
    const typeToken = this.CONSUME(T.Identifier);
    this.CONSUME(T.DoubleColon);
    const subtypeToken = this.CONSUME2(T.Identifier);
    const nameToken = this.OPTION(() => this.CONSUME3(T.Identifier));
    const block = this.SUBRULE(this.block);
    return this.ACTION(() => {
      const type = this.b.identifier(typeToken);
      const subtype = this.b.identifier(subtypeToken);
      if (!type || !subtype || !block) return undefined;
      const bodySpan = block.span ?? subtype.span;
      return { kind: 'Function', type, subtype, name: this.b.identifier(nameToken) ?? null, body: block.statements, bodySpan, span: this.b.join(type.span, bodySpan) };
    });
  });

  block = this.RULE('block', (): Maybe<{ statements: A.Statement[]; span: A.Node['span'] | undefined }> => {
    const open = this.CONSUME(T.LBrace);
    const statements: A.Statement[] = [];
    this.AT_LEAST_ONE(() => {
      const s = this.SUBRULE(this.statement);
      this.ACTION(() => s && statements.push(s));
    });
    const close = this.CONSUME(T.RBrace);
    return this.ACTION(() => ({ statements, span: this.spanAround(open, close, statements) }));
  });

  statement = this.RULE('statement', (): Maybe<A.Statement> =>
    this.OR([{ ALT: () => this.SUBRULE(this.functionDecl) }, { ALT: () => this.SUBRULE(this.ifStatement) }, { ALT: () => this.SUBRULE(this.action) }]),
  );

  action = this.RULE('action', (): Maybe<A.Action> => {
    const nameToken = this.CONSUME(T.Identifier);
    const parens = this.OPTION(() => {
      const open = this.CONSUME(T.LParen);
      const args: Maybe<A.Value>[] = [];
      this.OPTION2(() => {
        args.push(this.SUBRULE(this.value));
        this.MANY(() => {
          this.CONSUME(T.Comma);
          args.push(this.SUBRULE2(this.value));
        });
      });
      const close = this.CONSUME(T.RParen);
      return { open, args, close };
    });
    return this.ACTION(() => {
      const name = this.b.identifier(nameToken);
      if (!name) return undefined;
      if (!parens) return { kind: 'Action', name, args: null, span: name.span };
      const args = parens.args.filter((a): a is A.Value => a !== undefined);
      const end = real(parens.close) ? this.b.tokenSpan(parens.close) : args.length ? args[args.length - 1]!.span : this.b.tokenSpan(parens.open);
      return { kind: 'Action', name, args, span: this.b.join(name.span, end) };
    });
  });

  ifStatement = this.RULE('ifStatement', (): Maybe<A.IfStatement> => {
    const ifToken = this.CONSUME(T.If);
    const condition = this.OR({
      IGNORE_AMBIGUITIES: true,
      DEF: [
        {
          GATE: () => this.LA(1).tokenType === T.LParen,
          ALT: () => {
            this.CONSUME(T.LParen);
            const c = this.SUBRULE(this.condition);
            this.CONSUME(T.RParen);
            return c;
          },
        },
        {
          // E104: `if cond { ... }`; parsed so the body is still checked.
          ALT: () => {
            const c = this.SUBRULE2(this.condition);
            this.ACTION(() => {
              this.b.report(
                diagnostic('E104', c?.span ?? this.b.tokenSpan(ifToken), 'the condition of an if must be in parentheses', { help: 'write if (condition) { ... }' }),
              );
            });
            return c;
          },
        },
      ],
    });
    const then = this.SUBRULE(this.block);
    const otherwise = this.OPTION(() => {
      this.CONSUME(T.Else);
      return this.OR2([
        { ALT: () => ({ block: this.SUBRULE2(this.block), nested: undefined, nestedIf: undefined }) },
        // E103: `else if`; parsed so the nested statement is still checked.
        {
          ALT: () => {
            const nestedIf = this.LA(1);
            const nested = this.SUBRULE3(this.ifStatement);
            return { block: undefined, nested, nestedIf };
          },
        },
      ]);
    });
    return this.ACTION(() => {
      if (!real(ifToken) || !condition || !then) return undefined;
      let elseBody: A.Statement[] | null = null;
      let end = then.span ?? condition.span;
      if (otherwise?.block) {
        elseBody = otherwise.block.statements;
        end = otherwise.block.span ?? end;
      } else if (otherwise) {
        this.b.report(diagnostic('E103', real(otherwise.nestedIf) ? this.b.tokenSpan(otherwise.nestedIf) : end, '"else if" is not allowed', { help: 'write else { if (...) { ... } }' }));
        if (otherwise.nested) {
          elseBody = [otherwise.nested];
          end = otherwise.nested.span;
        }
      }
      return { kind: 'If', condition, then: then.statements, else: elseBody, span: this.b.join(this.b.tokenSpan(ifToken), end) };
    });
  });

  condition = this.RULE('condition', (): Maybe<A.Condition> => {
    let result = this.SUBRULE(this.andCondition);
    this.MANY(() => {
      const op = this.OR([{ ALT: () => this.CONSUME(T.Or) }, { ALT: () => this.CONSUME(T.OrOr) }]);
      const right = this.SUBRULE2(this.andCondition);
      result = this.ACTION(() => this.logical('or', op, result, right));
    });
    return result;
  });

  andCondition = this.RULE('andCondition', (): Maybe<A.Condition> => {
    let result = this.SUBRULE(this.unaryCondition);
    this.MANY(() => {
      const op = this.OR([{ ALT: () => this.CONSUME(T.And) }, { ALT: () => this.CONSUME(T.AndAnd) }]);
      const right = this.SUBRULE2(this.unaryCondition);
      result = this.ACTION(() => this.logical('and', op, result, right));
    });
    return result;
  });

  unaryCondition = this.RULE('unaryCondition', (): Maybe<A.Condition> => {
    const not = this.OPTION(() => this.OR([{ ALT: () => this.CONSUME(T.Not) }, { ALT: () => this.CONSUME(T.Bang) }]));
    const operand = this.SUBRULE(this.primaryCondition);
    return this.ACTION(() => {
      if (!operand) return undefined;
      if (!not || !real(not)) return operand;
      return { kind: 'Not', operatorText: not.image, operand, span: this.b.join(this.b.tokenSpan(not), operand.span) };
    });
  });

  primaryCondition = this.RULE('primaryCondition', (): Maybe<A.Condition> =>
    this.OR({
      IGNORE_AMBIGUITIES: true,
      DEF: [
        {
          // `(` starts a group unless it is a negative number `(-5)`.
          GATE: () => this.LA(1).tokenType === T.LParen && this.LA(2).tokenType !== T.Minus,
          ALT: () => {
            const open = this.CONSUME(T.LParen);
            const inner = this.SUBRULE(this.condition);
            const close = this.CONSUME(T.RParen);
            return this.ACTION((): Maybe<A.Condition> => {
              if (!inner || !real(open)) return inner;
              const end = real(close) ? this.b.tokenSpan(close) : inner.span;
              return { kind: 'Group', inner, span: this.b.join(this.b.tokenSpan(open), end) };
            });
          },
        },
        {
          ALT: () => {
            const left = this.SUBRULE(this.value);
            const comparison = this.OPTION(() => {
              const op = this.SUBRULE(this.compareOperator);
              const right = this.SUBRULE2(this.value);
              return { op, right };
            });
            return this.ACTION((): Maybe<A.Condition> => {
              if (!left) return undefined;
              if (!comparison || !comparison.right || !real(comparison.op)) return { kind: 'ValueCondition', value: left, span: left.span };
              const opToken = comparison.op;
              return {
                kind: 'Comparison',
                operator: (opToken.image === 'IN' ? 'in' : opToken.image) as A.ComparisonOperator,
                operatorText: opToken.image,
                operatorSpan: this.b.tokenSpan(opToken),
                left,
                right: comparison.right,
                span: this.b.join(left.span, comparison.right.span),
              };
            });
          },
        },
      ],
    }),
  );

  compareOperator = this.RULE('compareOperator', (): IToken =>
    this.OR([T.EqualEqual, T.NotEqual, T.LessEqual, T.GreaterEqual, T.Less, T.Greater, T.In].map((t: TokenType) => ({ ALT: () => this.CONSUME(t) }))),
  );

  value = this.RULE('value', (): Maybe<A.Value> =>
    this.OR([
      { ALT: () => this.SUBRULE(this.object) },
      { ALT: () => this.SUBRULE(this.list) },
      { ALT: () => this.literal(this.CONSUME(T.StringLiteral)) },
      { ALT: () => this.literal(this.CONSUME(T.True)) },
      { ALT: () => this.literal(this.CONSUME(T.False)) },
      { ALT: () => this.literal(this.CONSUME(T.Cidr)) },
      { ALT: () => this.SUBRULE(this.scalarOrRange) },
      { ALT: () => this.SUBRULE(this.dottedName) },
      // Lexemes that are always errors; parsed as values so one bad
      // literal does not derail the rest of the file.
      { ALT: () => this.literal(this.CONSUME(T.Ipv6Literal)) },
      { ALT: () => this.literal(this.CONSUME(T.MalformedAddress)) },
      { ALT: () => this.literal(this.CONSUME(T.UnterminatedString)) },
    ]),
  );

  scalarOrRange = this.RULE('scalarOrRange', (): Maybe<A.Value> => {
    const from = this.SUBRULE(this.scalar);
    const to = this.OPTION(() => {
      this.CONSUME(T.Minus);
      return this.SUBRULE2(this.scalar) ?? null;
    });
    return this.ACTION(() => {
      if (!from) return undefined;
      if (to === undefined) return from;
      if (to === null) return undefined;
      return { kind: 'Range', from, to, span: this.b.join(from.span, to.span) };
    });
  });

  scalar = this.RULE('scalar', (): Maybe<A.ScalarLiteral> =>
    this.OR([
      { ALT: () => this.number(this.CONSUME(T.Integer), undefined, undefined) },
      { ALT: () => this.number(this.CONSUME(T.Decimal), undefined, undefined) },
      { ALT: () => this.number(this.CONSUME(T.Ipv4), undefined, undefined) },
      {
        ALT: () => {
          const open = this.CONSUME(T.LParen);
          this.CONSUME(T.Minus);
          const n = this.OR2([{ ALT: () => this.CONSUME2(T.Integer) }, { ALT: () => this.CONSUME2(T.Decimal) }]);
          const close = this.CONSUME(T.RParen);
          return this.number(n, open, close);
        },
      },
    ]),
  );

  object = this.RULE('object', (): Maybe<A.ObjectLiteral> => {
    const open = this.CONSUME(T.LBrace);
    const pairs: Maybe<A.Pair>[] = [this.SUBRULE(this.pair)];
    this.MANY(() => {
      this.CONSUME(T.Comma);
      pairs.push(this.SUBRULE2(this.pair));
    });
    const close = this.CONSUME(T.RBrace);
    return this.ACTION(() => {
      const kept = pairs.filter((p): p is A.Pair => p !== undefined);
      const span = this.spanAround(open, close, kept);
      if (!span || kept.length === 0) return undefined;
      return { kind: 'Object', pairs: kept, span };
    });
  });

  pair = this.RULE('pair', (): Maybe<A.Pair> => {
    const keyToken = this.CONSUME(T.Identifier);
    this.CONSUME(T.Colon);
    const value = this.SUBRULE(this.value);
    return this.ACTION(() => {
      const key = this.b.identifier(keyToken);
      return key && value ? { kind: 'Pair', key, value, span: this.b.join(key.span, value.span) } : undefined;
    });
  });

  list = this.RULE('list', (): Maybe<A.ListLiteral> => {
    const open = this.CONSUME(T.LBracket);
    const items: Maybe<A.Value>[] = [this.SUBRULE(this.value)];
    this.MANY(() => {
      this.CONSUME(T.Comma);
      items.push(this.SUBRULE2(this.value));
    });
    const close = this.CONSUME(T.RBracket);
    return this.ACTION(() => {
      const kept = items.filter((v): v is A.Value => v !== undefined);
      const span = this.spanAround(open, close, kept);
      if (!span || kept.length === 0) return undefined;
      return { kind: 'List', items: kept, span };
    });
  });

  /** From an opening to a closing bracket; after recovery, from what is there. */
  private spanAround(open: IToken, close: IToken, inner: readonly { span: A.Node['span'] }[]): A.Node['span'] | undefined {
    if (real(open) && real(close)) return this.b.between(open, close);
    const first = real(open) ? this.b.tokenSpan(open) : inner[0]?.span;
    const last = real(close) ? this.b.tokenSpan(close) : inner[inner.length - 1]?.span;
    if (!first || !last) return first ?? last;
    return this.b.join(first, last);
  }

  private logical(operator: 'and' | 'or', op: IToken, left: Maybe<A.Condition>, right: Maybe<A.Condition>): Maybe<A.Condition> {
    if (!left || !right || !real(op)) return left;
    return { kind: 'Logical', operator, operatorText: op.image, left, right, span: this.b.join(left.span, right.span) };
  }

  private number(t: IToken, open: IToken | undefined, close: IToken | undefined): Maybe<A.ScalarLiteral> {
    return this.ACTION(() => {
      if (!real(t)) return undefined;
      const negative = open !== undefined;
      if (negative && (!real(close) || !real(open))) return undefined;
      const span = negative ? this.b.between(open, close)! : this.b.tokenSpan(t);
      switch (t.tokenType.name) {
        case 'Integer':
          return this.b.integer(t, negative, span);
        case 'Decimal':
          return { kind: 'Decimal', text: t.image, negative, value: (negative ? -1 : 1) * Number(t.image), span } as A.DecimalLiteral;
        default:
          return this.b.ipv4(t.image, span);
      }
    });
  }

  private literal(t: IToken): Maybe<A.Value> {
    return this.ACTION(() => {
      if (!real(t)) return undefined;
      const span = this.b.tokenSpan(t);
      switch (t.tokenType.name) {
        case 'StringLiteral':
          return this.b.string(t, span);
        case 'True':
          return { kind: 'Boolean', value: true, span };
        case 'False':
          return { kind: 'Boolean', value: false, span };
        case 'Cidr':
          return this.b.cidr(t.image, span);
        case 'Ipv6Literal':
          this.b.report(diagnostic('E112', span, `IPv6 is not supported: ${t.image}`, { help: 'NaCl addresses are IPv4 only' }));
          return undefined;
        case 'MalformedAddress':
          this.b.report(diagnostic('E106', span, `malformed IPv4 address ${t.image}`, { help: 'an IPv4 address has four numbers separated by dots' }));
          return undefined;
        default:
          this.b.report(diagnostic('E111', span, 'unterminated string', { help: 'close the string with " on the same line' }));
          return undefined;
      }
    });
  }
}

let instance: NaclParser | undefined;

/** The parser is stateful but reusable; building it costs a self-analysis, so build once. */
export function naclParser(): NaclParser {
  instance ??= new NaclParser();
  return instance;
}
