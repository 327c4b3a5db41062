import fc from 'fast-check';

/*
 * fast-check arbitraries that write NaCl source text following the grammar of
 * nacl-language.md section 3: syntactically valid programs (meaning is not
 * considered), with comments and irregular whitespace sprinkled in.
 */

const letters = 'abcdefghijklmnopqrstuvwxyz';
const reserved = new Set(['in', 'IN', 'and', 'or', 'not', 'if', 'else', 'true', 'false']);

export const identifier = fc
  .tuple(
    fc.constantFrom(...letters, ...letters.toUpperCase()),
    fc.array(fc.constantFrom(...letters, ...'0123456789_-'), { maxLength: 8 }),
  )
  .map(([h, t]) => h + t.join(''))
  .filter((s) => !reserved.has(s));

const space = fc.constantFrom(' ', '  ', '\n', '\t', ' \n  ');
const comment = fc.oneof(
  fc.string({ maxLength: 12 }).map((s) => ' # ' + s.replace(/[\r\n]/g, '') + '\n'),
  fc.string({ maxLength: 12 }).map((s) => ' // ' + s.replace(/[\r\n]/g, '') + '\n'),
  fc.string({ maxLength: 12 }).map((s) => ' /* ' + s.replace(/\*\//g, '') + ' */ '),
);
/** Whitespace, sometimes with a comment in it. */
export const gap = fc.oneof({ weight: 5, arbitrary: space }, { weight: 1, arbitrary: comment });

const octet = fc.integer({ min: 0, max: 255 }).map(String);
export const ipv4 = fc.tuple(octet, octet, octet, octet).map((o) => o.join('.'));
const integer = fc.integer({ min: 0, max: 70000 }).map(String);
const scalar = fc.oneof(
  integer,
  fc.integer({ min: 1, max: 99 }).map((n) => `(-${n})`),
  fc.tuple(fc.integer({ min: 0, max: 99 }), fc.integer({ min: 0, max: 99 })).map(([a, b]) => `${a}.${b}`),
  ipv4,
);
const cidr = fc.tuple(ipv4, fc.integer({ min: 0, max: 32 })).map(([a, p]) => `${a}/${p}`);
const range = fc.oneof(
  fc.tuple(integer, integer).map(([a, b]) => `${a}-${b}`),
  fc.tuple(ipv4, gap, gap, ipv4).map(([a, g1, g2, b]) => `${a}${g1}-${g2}${b}`),
);
const stringLit = fc
  .array(fc.oneof(fc.constantFrom('\\n', '\\t', '\\\\', '\\"', ' ', '#', '//', '/*'), fc.string({ maxLength: 4 })), { maxLength: 5 })
  .map((parts) => '"' + parts.join('').replace(/["\\\r\n]/g, '') + '"');
const dotted = fc.array(identifier, { minLength: 1, maxLength: 3 }).map((p) => p.join('.'));

export const value: fc.Arbitrary<string> = fc.letrec<{ value: string }>((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalar,
    cidr,
    range,
    stringLit,
    fc.constantFrom('true', 'false'),
    dotted,
    fc
      .array(fc.tuple(identifier, gap, tie('value')), { minLength: 1, maxLength: 3 })
      .map((pairs) => `{${pairs.map(([k, g, v]) => `${k}:${g}${v}`).join(', ')}}`),
    fc.array(tie('value'), { minLength: 1, maxLength: 3 }).map((items) => `[${items.join(',')}]`),
  ),
})).value;

const compare = fc.constantFrom('==', '!=', '<', '>', '<=', '>=', 'in', 'IN');
export const condition: fc.Arbitrary<string> = fc.letrec<{ cond: string; primary: string }>((tie) => ({
  primary: fc.oneof(
    { depthSize: 'small' },
    fc.tuple(value, compare, value).map(([a, op, b]) => `${a} ${op} ${b}`),
    value,
    tie('cond').map((c) => `(${c})`),
  ),
  cond: fc.oneof(
    { depthSize: 'small' },
    tie('primary'),
    tie('primary').chain((p) => fc.constantFrom(`not ${p}`, `!${p}`)),
    fc.tuple(tie('cond'), fc.constantFrom('and', 'or', '&&', '||'), tie('primary')).map(([a, op, b]) => `${a} ${op} ${b}`),
  ),
})).cond;

const subtype = fc.constantFrom('IP', 'TCP', 'UDP', 'ICMP', 'ip', 'Tcp');
export const statement: fc.Arbitrary<string> = fc.letrec<{ stmt: string; body: string }>((tie) => ({
  body: fc.array(fc.tuple(gap, tie('stmt')), { minLength: 1, maxLength: 4 }).map((ss) => ss.map(([g, s]) => g + s).join(' ')),
  stmt: fc.oneof(
    { depthSize: 'small' },
    identifier,
    fc.tuple(identifier, fc.array(value, { maxLength: 3 })).map(([n, args]) => `${n}(${args.join(', ')})`),
    fc.tuple(condition, tie('body'), fc.option(tie('body'))).map(
      ([c, t, e]) => `if (${c}) {${t}}` + (e === null ? '' : ` else {${e}}`),
    ),
    fc.tuple(fc.constantFrom('Filter', 'Nat'), subtype, fc.option(identifier), tie('body')).map(
      ([t, s, n, b]) => `${t}::${s}${n ? ' ' + n : ''} {${b}}`,
    ),
  ),
})).stmt;

export const topLevel = fc.oneof(
  fc.tuple(identifier, identifier, value).map(([t, n, v]) => `${t} ${n} ${v}`),
  fc.tuple(dotted, value).map(([n, v]) => `${n}: ${v}`),
  fc
    .tuple(fc.constantFrom('Filter', 'Nat'), subtype, identifier, fc.array(statement, { minLength: 1, maxLength: 4 }))
    .map(([t, s, n, b]) => `${t}::${s} ${n} {\n${b.join('\n')}\n}`),
  fc.integer({ min: 0, max: 99 }).map(String),
);

export const program = fc.array(fc.tuple(gap, topLevel, gap), { maxLength: 6 }).map((els) => els.map(([a, e, b]) => a + e + b).join('\n'));
