import { CstParser, type TokenType } from 'chevrotain';
import * as T from './tokens.ts';

/**
 * The NaCl grammar (nacl-language.md section 3) as a chevrotain CST parser.
 * Each rule reads like the EBNF; two deliberate extras parse common mistakes
 * (`else if`, `if` without parentheses) so the visitor can report them with a
 * targeted message instead of a generic "unexpected token".
 */
export class NaclParser extends CstParser {
  constructor() {
    super(T.allTokens, { recoveryEnabled: true, maxLookahead: 3, nodeLocationTracking: 'none' });
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

  program = this.RULE('program', () => {
    this.MANY(() => this.SUBRULE(this.toplevel));
  });

  toplevel = this.RULE('toplevel', () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.functionDecl) },
      { ALT: () => this.SUBRULE(this.typedInit) },
      { ALT: () => this.SUBRULE(this.assignment) },
      { ALT: () => this.CONSUME(T.Integer) },
    ]);
  });

  typedInit = this.RULE('typedInit', () => {
    this.CONSUME(T.Identifier, { LABEL: 'type' });
    this.CONSUME2(T.Identifier, { LABEL: 'name' });
    this.SUBRULE(this.value);
  });

  assignment = this.RULE('assignment', () => {
    this.SUBRULE(this.dottedName);
    this.CONSUME(T.Colon);
    this.SUBRULE(this.value);
  });

  dottedName = this.RULE('dottedName', () => {
    this.CONSUME(T.Identifier);
    this.MANY(() => {
      this.CONSUME(T.Dot);
      this.CONSUME2(T.Identifier);
    });
  });

  functionDecl = this.RULE('functionDecl', () => {
    this.CONSUME(T.Identifier, { LABEL: 'type' });
    this.CONSUME(T.DoubleColon);
    this.CONSUME2(T.Identifier, { LABEL: 'subtype' });
    this.OPTION(() => this.CONSUME3(T.Identifier, { LABEL: 'name' }));
    this.SUBRULE(this.block);
  });

  block = this.RULE('block', () => {
    this.CONSUME(T.LBrace);
    this.AT_LEAST_ONE(() => this.SUBRULE(this.statement));
    this.CONSUME(T.RBrace);
  });

  statement = this.RULE('statement', () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.functionDecl) },
      { ALT: () => this.SUBRULE(this.ifStatement) },
      { ALT: () => this.SUBRULE(this.action) },
    ]);
  });

  action = this.RULE('action', () => {
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.LParen);
      this.OPTION2(() => {
        this.SUBRULE(this.value);
        this.MANY(() => {
          this.CONSUME(T.Comma);
          this.SUBRULE2(this.value);
        });
      });
      this.CONSUME(T.RParen);
    });
  });

  ifStatement = this.RULE('ifStatement', () => {
    this.CONSUME(T.If);
    this.OR({
      IGNORE_AMBIGUITIES: true,
      DEF: [
      {
        GATE: () => this.LA(1).tokenType === T.LParen,
        ALT: () => {
          this.CONSUME(T.LParen);
          this.SUBRULE(this.condition);
          this.CONSUME(T.RParen);
        },
      },
      // E104: `if cond { ... }`; parsed so the body is still checked.
      { ALT: () => this.SUBRULE2(this.condition, { LABEL: 'bareCondition' }) },
      ],
    });
    this.SUBRULE(this.block, { LABEL: 'then' });
    this.OPTION(() => {
      this.CONSUME(T.Else);
      this.OR2([
        { ALT: () => this.SUBRULE2(this.block, { LABEL: 'otherwise' }) },
        // E103: `else if`; parsed so the nested statement is still checked.
        { ALT: () => this.SUBRULE(this.ifStatement, { LABEL: 'elseIf' }) },
      ]);
    });
  });

  condition = this.RULE('condition', () => {
    this.SUBRULE(this.andCondition);
    this.MANY(() => {
      this.OR([{ ALT: () => this.CONSUME(T.Or) }, { ALT: () => this.CONSUME(T.OrOr) }]);
      this.SUBRULE2(this.andCondition);
    });
  });

  andCondition = this.RULE('andCondition', () => {
    this.SUBRULE(this.unaryCondition);
    this.MANY(() => {
      this.OR([{ ALT: () => this.CONSUME(T.And) }, { ALT: () => this.CONSUME(T.AndAnd) }]);
      this.SUBRULE2(this.unaryCondition);
    });
  });

  unaryCondition = this.RULE('unaryCondition', () => {
    this.OPTION(() => this.OR([{ ALT: () => this.CONSUME(T.Not) }, { ALT: () => this.CONSUME(T.Bang) }]));
    this.SUBRULE(this.primaryCondition);
  });

  primaryCondition = this.RULE('primaryCondition', () => {
    this.OR({
      IGNORE_AMBIGUITIES: true,
      DEF: [
        {
          // `(` starts a group unless it is a negative number `(-5)`.
          GATE: () => this.LA(1).tokenType === T.LParen && this.LA(2).tokenType !== T.Minus,
          ALT: () => {
            this.CONSUME(T.LParen);
            this.SUBRULE(this.condition);
            this.CONSUME(T.RParen);
          },
        },
        {
          ALT: () => {
            this.SUBRULE(this.value, { LABEL: 'left' });
            this.OPTION(() => {
              this.SUBRULE(this.compareOperator);
              this.SUBRULE2(this.value, { LABEL: 'right' });
            });
          },
        },
      ],
    });
  });

  compareOperator = this.RULE('compareOperator', () => {
    this.OR(
      [T.EqualEqual, T.NotEqual, T.LessEqual, T.GreaterEqual, T.Less, T.Greater, T.In].map((t: TokenType) => ({
        ALT: () => this.CONSUME(t),
      })),
    );
  });

  value = this.RULE('value', () => {
    this.OR([
      { ALT: () => this.SUBRULE(this.object) },
      { ALT: () => this.SUBRULE(this.list) },
      { ALT: () => this.CONSUME(T.StringLiteral) },
      { ALT: () => this.CONSUME(T.True) },
      { ALT: () => this.CONSUME(T.False) },
      { ALT: () => this.CONSUME(T.Cidr) },
      { ALT: () => this.SUBRULE(this.scalarOrRange) },
      { ALT: () => this.SUBRULE(this.dottedName) },
      // Lexemes that are always errors; parsed as values so one bad
      // literal does not derail the rest of the file.
      { ALT: () => this.CONSUME(T.Ipv6Literal) },
      { ALT: () => this.CONSUME(T.MalformedAddress) },
      { ALT: () => this.CONSUME(T.UnterminatedString) },
    ]);
  });

  scalarOrRange = this.RULE('scalarOrRange', () => {
    this.SUBRULE(this.scalar, { LABEL: 'from' });
    this.OPTION(() => {
      this.CONSUME(T.Minus);
      this.SUBRULE2(this.scalar, { LABEL: 'to' });
    });
  });

  scalar = this.RULE('scalar', () => {
    this.OR([
      { ALT: () => this.CONSUME(T.Integer) },
      { ALT: () => this.CONSUME(T.Decimal) },
      { ALT: () => this.CONSUME(T.Ipv4) },
      {
        ALT: () => {
          this.CONSUME(T.LParen);
          this.CONSUME(T.Minus);
          this.OR2([{ ALT: () => this.CONSUME2(T.Integer) }, { ALT: () => this.CONSUME2(T.Decimal) }]);
          this.CONSUME(T.RParen);
        },
      },
    ]);
  });

  object = this.RULE('object', () => {
    this.CONSUME(T.LBrace);
    this.SUBRULE(this.pair);
    this.MANY(() => {
      this.CONSUME(T.Comma);
      this.SUBRULE2(this.pair);
    });
    this.CONSUME(T.RBrace);
  });

  pair = this.RULE('pair', () => {
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Colon);
    this.SUBRULE(this.value);
  });

  list = this.RULE('list', () => {
    this.CONSUME(T.LBracket);
    this.SUBRULE(this.value);
    this.MANY(() => {
      this.CONSUME(T.Comma);
      this.SUBRULE2(this.value);
    });
    this.CONSUME(T.RBracket);
  });
}

let instance: NaclParser | undefined;

/** The parser is stateful but reusable; building it costs a self-analysis, so build once. */
export function naclParser(): NaclParser {
  instance ??= new NaclParser();
  return instance;
}
