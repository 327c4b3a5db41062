import { describe, expect, it } from 'vitest';
import { parseNacl } from '../../grammar/parse.ts';

/** The first diagnostic as `CODE line:column`. */
function firstProblem(text: string): string {
  const d = parseNacl(text, 'test.nacl').diagnostics[0];
  return d ? `${d.code} ${d.span.startLine}:${d.span.startColumn}` : 'none';
}

function codes(text: string): string[] {
  return parseNacl(text, 'test.nacl').diagnostics.map((d) => d.code);
}

describe('lexical and syntax errors (nacl-language.md 9.2)', () => {
  it('E101: a character that starts no token is reported where it stands', () => {
    expect(firstProblem('x: 5\n_port: 5')).toBe('E101 2:1');
  });

  it('E102: an empty object is an unexpected token at its closing brace', () => {
    expect(firstProblem('x: {}')).toBe('E102 1:5');
  });

  it('E102: a trailing comma in a list is an unexpected token', () => {
    expect(firstProblem('x: [1,\n  2,]')).toBe('E102 2:5');
  });

  it('E102: an empty function body is an unexpected token', () => {
    expect(firstProblem('Filter::IP f { }')).toBe('E102 1:16');
  });

  it('E102: a reserved word cannot be a name', () => {
    expect(firstProblem('in: 5')).toBe('E102 1:1');
  });

  it('E102: a string cannot be an object key', () => {
    expect(firstProblem('x: { "k": 1 }')).toBe('E102 1:6');
  });

  it('E102: a missing colon between key and value is reported at the value', () => {
    expect(firstProblem('Iface eth0 {\n  index: 0,\n  address 10.0.0.1\n}\n')).toBe('E102 3:11');
  });

  it('E103: "else if" is reported at the second if', () => {
    expect(firstProblem('Filter::IP f {\n  if (a) { drop } else if (b) { drop }\n  drop\n}')).toBe('E103 2:24');
  });

  it('E104: a condition without parentheses is reported at the condition', () => {
    expect(firstProblem('Filter::IP f {\n    if ip.ttl > 5 { drop }\n}')).toBe('E104 2:8');
  });

  it('E105: an unterminated block comment is reported at its opening', () => {
    expect(firstProblem('x: 5 /* note')).toBe('E105 1:6');
  });

  it('E106: an address with three numbers is malformed', () => {
    expect(firstProblem('x: 1.2.3')).toBe('E106 1:4');
  });

  it('E106: an address with five numbers is malformed', () => {
    expect(firstProblem('y: 1.2.3.4.5')).toBe('E106 1:4');
  });

  it('E107: two numbers separated by a space are not one number', () => {
    expect(firstProblem('Iface e { index: 1 2 }')).toBe('E107 1:18');
    expect(codes('Iface e { index: 1 2 }')).toEqual(['E107']);
  });

  it('E108: an IPv4 octet with a leading zero is rejected', () => {
    expect(firstProblem('x: 010.0.0.1')).toBe('E108 1:4');
  });

  it('E109: whitespace inside a dotted name is reported', () => {
    expect(firstProblem('lan . input: f')).toBe('E109 1:1');
  });

  it.each([
    ['x: 10 . 0 . 0 . 1', 'address 10.0.0.1'],
    ['x: 10.0.0.0 / 24', 'CIDR 10.0.0.0/24'],
    ['x: 10. 0.0.1', 'address 10.0.0.1'],
  ])('E109: whitespace inside an address or CIDR (%s) is one targeted error, no cascade', (text, what) => {
    const { diagnostics } = parseNacl(text, 't.nacl');
    expect(diagnostics.map((d) => `${d.code} ${d.span.startLine}:${d.span.startColumn} ${d.message}`)).toEqual([`E109 1:4 whitespace inside the ${what}`]);
  });

  it('reports a CIDR with a leading-zero octet once (E108), not also as above 255', () => {
    expect(codes('x: 010.0.0.0/8')).toEqual(['E108']);
  });

  it('leaves spaced numbers that spell no address to the parser', () => {
    expect(codes('x: 1 . 2')).toEqual(['E102']);
    expect(codes('r: 10.0.0.5 - 10.0.0.9')).toEqual([]);
  });

  it('reports a refused character inside a dotted name as E101 only, not as whitespace', () => {
    expect(codes('m: { a: 1 }\nx: m._a')).toEqual(['E101']);
    expect(codes('m: { a: 1 }\nx: m.__proto__')).toEqual(['E101']);
    expect(codes('x: lan . /* c */ input')[0]).toBe('E109');
  });

  it('E109: whitespace inside :: is reported', () => {
    expect(codes('Filter : : IP f { drop }')[0]).toBe('E109');
  });

  it('E110: an unknown escape in a string is reported at the backslash', () => {
    expect(firstProblem('Filter::IP f { log("a\\qb") drop }')).toBe('E110 1:22');
  });

  it('E111: a string cut by a line break is unterminated', () => {
    expect(firstProblem('Filter::IP f { log("abc\n") drop }')).toBe('E111 1:20');
  });

  it('E112: an IPv6 address is reported as unsupported', () => {
    expect(firstProblem('x: fe80::1')).toBe('E112 1:4');
  });

  it('E405: an IPv4 octet above 255 is reported even in an unused value', () => {
    expect(firstProblem('x: 256.1.1.1')).toBe('E405 1:4');
  });

  it('E406: a CIDR prefix above 32 is reported', () => {
    expect(firstProblem('x: 10.0.0.0/33')).toBe('E406 1:4');
  });

  it('W10: an integer with a leading zero is read as decimal, with a warning', () => {
    const { diagnostics, program } = parseNacl('x: 08', 't.nacl');
    expect(diagnostics.map((d) => `${d.code} ${d.severity}`)).toEqual(['W10 warning']);
    const value = program.elements[0]!.kind === 'Assignment' ? program.elements[0]!.value : undefined;
    expect(value).toMatchObject({ kind: 'Integer', value: 8 });
  });
});

describe('lexical rules', () => {
  it('accepts every escape of the string lexeme and decodes it', () => {
    const { program, diagnostics } = parseNacl('Filter::IP f { log("a\\n\\t\\\\\\"b") drop }', 't.nacl');
    expect(diagnostics).toEqual([]);
    const fn = program.elements[0]!;
    expect(fn.kind === 'Function' && fn.body[0]!.kind === 'Action' && fn.body[0]!.args?.[0]).toMatchObject({ value: 'a\n\t\\"b' });
  });

  it('keeps comment markers inside strings as characters', () => {
    const { program, diagnostics } = parseNacl('Filter::IP f { log("see http://x # y /* z */") drop }', 't.nacl');
    expect(diagnostics).toEqual([]);
    const fn = program.elements[0]!;
    expect(fn.kind === 'Function' && fn.body[0]!.kind === 'Action' && fn.body[0]!.args?.[0]).toMatchObject({
      value: 'see http://x # y /* z */',
    });
  });

  it('reads identifiers with hyphens and words that start with keywords as names', () => {
    const { program, diagnostics } = parseNacl('inside: echo-request\nandroid: e4-3-1', 't.nacl');
    expect(diagnostics).toEqual([]);
    expect(program.elements.map((e) => e.kind === 'Assignment' && e.target.parts[0]!.text)).toEqual(['inside', 'android']);
  });

  it('reads a subtype made of hex letters after :: as a subtype, not as an IPv6 address', () => {
    const { program, diagnostics } = parseNacl('Filter::a f { drop }\nFilter::cafe { drop }', 't.nacl');
    expect(diagnostics).toEqual([]);
    expect(program.elements.map((e) => e.kind === 'Function' && e.subtype.text)).toEqual(['a', 'cafe']);
    expect(parseNacl('x: fe80::a', 't.nacl').diagnostics.map((d) => d.code)).toEqual(['E112']);
  });

  it('accepts all three comment styles and keeps them', () => {
    const { program, diagnostics } = parseNacl('# a\nx: 1 // b\n/* c\n d */ y: 2', 't.nacl');
    expect(diagnostics).toEqual([]);
    expect(program.comments.map((c) => c.style)).toEqual(['hash', 'slashes', 'block']);
  });

  it('ends a block comment at the first */', () => {
    expect(codes('/* a /* b */ x: 1')).toEqual([]);
    expect(codes('/* a /* b */ c */')).toContain('E102');
  });

  it('parses negative numbers only in parentheses, with inner spaces allowed', () => {
    const { program, diagnostics } = parseNacl('a: (-5)\nb: ( - 1.5 )\nc: (-5)-(-1)', 't.nacl');
    expect(diagnostics).toEqual([]);
    expect(program.elements.map((e) => e.kind === 'Assignment' && e.value.kind)).toEqual(['Integer', 'Decimal', 'Range']);
    expect(codes('a: -5')).toContain('E102');
  });

  it('allows spaces around the hyphen of an address range', () => {
    const { program, diagnostics } = parseNacl('r: 10.0.0.5 - 10.0.0.9', 't.nacl');
    expect(diagnostics).toEqual([]);
    expect(program.elements[0]).toMatchObject({ value: { kind: 'Range', from: { text: '10.0.0.5' }, to: { text: '10.0.0.9' } } });
  });

  it('writes a whole configuration on one line', () => {
    const { program, diagnostics } = parseNacl('Iface e { index: 0 } Filter::IP f { accept } e.input: f', 't.nacl');
    expect(diagnostics).toEqual([]);
    expect(program.elements.map((e) => e.kind)).toEqual(['TypedInit', 'Function', 'Assignment']);
  });
});

describe('syntax rules', () => {
  function conditionOf(cond: string): unknown {
    const { program, diagnostics } = parseNacl(`Filter::IP f { if (${cond}) { drop } drop }`, 't.nacl');
    expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    const fn = program.elements[0]!;
    if (fn.kind !== 'Function' || fn.body[0]!.kind !== 'If') throw new Error('no if');
    return shape(fn.body[0]!.condition);
  }

  function shape(c: any): unknown {
    switch (c.kind) {
      case 'Logical':
        return [c.operator, shape(c.left), shape(c.right)];
      case 'Not':
        return ['not', shape(c.operand)];
      case 'Group':
        return shape(c.inner);
      case 'Comparison':
        return `${c.left.parts?.map((p: any) => p.text).join('.') ?? c.left.text} ${c.operator}`;
      default:
        return c.value.parts.map((p: any) => p.text).join('.');
    }
  }

  it('binds and tighter than or', () => {
    expect(conditionOf('a or b and c')).toEqual(['or', 'a', ['and', 'b', 'c']]);
    expect(conditionOf('a && b || c')).toEqual(['or', ['and', 'a', 'b'], 'c']);
  });

  it('binds not tighter than a comparison', () => {
    expect(conditionOf('not ip.ttl > 5 and x')).toEqual(['and', ['not', 'ip.ttl >'], 'x']);
  });

  it('reads not x in S as "x is not in S"', () => {
    expect(conditionOf('not x in s')).toEqual(['not', 'x in']);
  });

  it('treats IN like in', () => {
    expect(conditionOf('ip.saddr IN s')).toEqual('ip.saddr in');
  });

  it('groups with parentheses', () => {
    expect(conditionOf('(a or b) and c')).toEqual(['and', ['or', 'a', 'b'], 'c']);
    expect(conditionOf('!(a or b)')).toEqual(['not', ['or', 'a', 'b']]);
  });

  it('rejects not not and chained comparisons', () => {
    expect(codes('Filter::IP f { if (not not a) { drop } drop }')).toContain('E102');
    expect(codes('Filter::IP f { if (1 < ip.ttl < 5) { drop } drop }')).toContain('E102');
  });

  it('parses actions with and without parentheses', () => {
    const { program } = parseNacl('Filter::IP f { accept() my_filter log("x", ip.saddr) drop }', 't.nacl');
    const fn = program.elements[0]!;
    expect(fn.kind === 'Function' && fn.body.map((s) => s.kind === 'Action' && [s.name.text, s.args?.length ?? null])).toEqual([
      ['accept', 0],
      ['my_filter', null],
      ['log', 2],
      ['drop', null],
    ]);
  });

  it('parses nested functions with and without names, also inside if', () => {
    const { program, diagnostics } = parseNacl(
      'Filter::IP f { Filter::TCP t { accept } if (x) { Filter::UDP { drop } } else { drop } accept }',
      't.nacl',
    );
    expect(diagnostics).toEqual([]);
    expect(program.elements).toHaveLength(1);
  });

  it('reports every syntax error of a file, not only the first', () => {
    const found = parseNacl('a: 1\nb: {}\nc: 2\nd: [1,]\ne: 3\nFilter::IP f { }\n', 't.nacl').diagnostics;
    expect(found.map((d) => `${d.code} ${d.span.startLine}`)).toEqual(['E102 2', 'E102 4', 'E102 6']);
  });

  it('keeps the elements around a syntax error', () => {
    const { program } = parseNacl('a: 1\nb: {}\nc: 2\n', 't.nacl');
    const names = program.elements.map((e) => e.kind === 'Assignment' && e.target.parts[0]!.text);
    expect(names).toContain('a');
    expect(names).toContain('c');
  });

  it('accepts a stray top-level integer', () => {
    const { program, diagnostics } = parseNacl('42\nx: 1', 't.nacl');
    expect(diagnostics).toEqual([]);
    expect(program.elements[0]!.kind).toBe('StrayNumber');
  });
});
