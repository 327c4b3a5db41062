import type { Span } from './span.ts';

/*
 * The syntax tree of a NaCl file (nacl-language.md section 3). Every node has
 * a span. The tree records what was written - names keep their case, numbers
 * their text - and nothing about what it means; that is the compiler's job.
 */

export interface Identifier {
  readonly kind: 'Identifier';
  readonly text: string;
  readonly span: Span;
}

export interface IntegerLiteral {
  readonly kind: 'Integer';
  /** Digits as written, without the sign. */
  readonly text: string;
  readonly negative: boolean;
  readonly value: number;
  readonly span: Span;
}

export interface DecimalLiteral {
  readonly kind: 'Decimal';
  readonly text: string;
  readonly negative: boolean;
  readonly value: number;
  readonly span: Span;
}

export interface Ipv4Literal {
  readonly kind: 'Ipv4';
  readonly text: string;
  /** The address as an unsigned 32-bit number; NaN when an octet is invalid. */
  readonly value: number;
  readonly span: Span;
}

export interface CidrLiteral {
  readonly kind: 'Cidr';
  readonly text: string;
  readonly address: Ipv4Literal;
  readonly prefix: number;
  readonly span: Span;
}

export type ScalarLiteral = IntegerLiteral | DecimalLiteral | Ipv4Literal;

export interface RangeLiteral {
  readonly kind: 'Range';
  readonly from: ScalarLiteral;
  readonly to: ScalarLiteral;
  readonly span: Span;
}

export interface StringLiteral {
  readonly kind: 'String';
  /** The decoded text (escapes applied). */
  readonly value: string;
  /** The source text between the quotes. */
  readonly raw: string;
  readonly span: Span;
}

export interface BooleanLiteral {
  readonly kind: 'Boolean';
  readonly value: boolean;
  readonly span: Span;
}

/** A name or dotted name: `office_nets`, `lan.address`, `ip.saddr`. */
export interface NameRef {
  readonly kind: 'Name';
  readonly parts: readonly Identifier[];
  readonly span: Span;
}

export interface Pair {
  readonly kind: 'Pair';
  readonly key: Identifier;
  readonly value: Value;
  readonly span: Span;
}

export interface ObjectLiteral {
  readonly kind: 'Object';
  readonly pairs: readonly Pair[];
  readonly span: Span;
}

export interface ListLiteral {
  readonly kind: 'List';
  readonly items: readonly Value[];
  readonly span: Span;
}

export type Value =
  | IntegerLiteral
  | DecimalLiteral
  | Ipv4Literal
  | CidrLiteral
  | RangeLiteral
  | StringLiteral
  | BooleanLiteral
  | NameRef
  | ObjectLiteral
  | ListLiteral;

export type ComparisonOperator = '==' | '!=' | '<' | '>' | '<=' | '>=' | 'in';

export interface Comparison {
  readonly kind: 'Comparison';
  readonly operator: ComparisonOperator;
  /** The operator as written (`in` or `IN`). */
  readonly operatorText: string;
  readonly operatorSpan: Span;
  readonly left: Value;
  readonly right: Value;
  readonly span: Span;
}

export interface LogicalCondition {
  readonly kind: 'Logical';
  readonly operator: 'and' | 'or';
  /** As written: `and`/`&&`, `or`/`||`. */
  readonly operatorText: string;
  readonly left: Condition;
  readonly right: Condition;
  readonly span: Span;
}

export interface NotCondition {
  readonly kind: 'Not';
  /** As written: `not` or `!`. */
  readonly operatorText: string;
  readonly operand: Condition;
  readonly span: Span;
}

/** A parenthesised condition, kept so the formatter reproduces the grouping. */
export interface GroupCondition {
  readonly kind: 'Group';
  readonly inner: Condition;
  readonly span: Span;
}

/** A bare value used as a condition: `if (maintenance_mode) { ... }`. */
export interface ValueCondition {
  readonly kind: 'ValueCondition';
  readonly value: Value;
  readonly span: Span;
}

export type Condition = Comparison | LogicalCondition | NotCondition | GroupCondition | ValueCondition;

export interface Action {
  readonly kind: 'Action';
  readonly name: Identifier;
  /** `null` when written without parentheses (`accept`), else the arguments (`accept()` = []). */
  readonly args: readonly Value[] | null;
  readonly span: Span;
}

export interface IfStatement {
  readonly kind: 'If';
  readonly condition: Condition;
  readonly then: readonly Statement[];
  readonly else: readonly Statement[] | null;
  readonly span: Span;
}

export interface FunctionDecl {
  readonly kind: 'Function';
  readonly type: Identifier;
  readonly subtype: Identifier;
  readonly name: Identifier | null;
  readonly body: readonly Statement[];
  /** From the `{` to the `}` of the body. */
  readonly bodySpan: Span;
  readonly span: Span;
}

export type Statement = Action | IfStatement | FunctionDecl;

/** `Type name value`: `Iface lan { ... }`, `Gateway gw [ ... ]`, `Iface wan dhcp`. */
export interface TypedInit {
  readonly kind: 'TypedInit';
  readonly type: Identifier;
  readonly name: Identifier;
  readonly value: Value;
  readonly span: Span;
}

/** `name: value` or `a.b.c: value`. */
export interface Assignment {
  readonly kind: 'Assignment';
  readonly target: NameRef;
  readonly value: Value;
  readonly span: Span;
}

/** A bare integer at top level (accepted upstream, ignored; W11). */
export interface StrayNumber {
  readonly kind: 'StrayNumber';
  readonly value: IntegerLiteral;
  readonly span: Span;
}

export type TopLevel = TypedInit | Assignment | FunctionDecl | StrayNumber;

export interface Comment {
  readonly kind: 'Comment';
  readonly style: 'hash' | 'slashes' | 'block';
  readonly text: string;
  readonly span: Span;
}

export interface Program {
  readonly kind: 'Program';
  readonly file: string;
  readonly elements: readonly TopLevel[];
  readonly comments: readonly Comment[];
  readonly span: Span;
}

export type Node =
  | Program
  | TopLevel
  | Statement
  | Condition
  | Value
  | Pair
  | Identifier
  | Comment;
