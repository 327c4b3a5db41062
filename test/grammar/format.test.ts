import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatProgram } from '../../grammar/format.ts';
import { parseNacl } from '../../grammar/parse.ts';
import { withoutSpans } from '../helpers/ast.ts';
import { examples } from '../helpers/examples.ts';
import { program } from '../helpers/nacl-arbitrary.ts';

function fmt(text: string): string {
  const parsed = parseNacl(text, 'x.nacl');
  expect(parsed.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
  return formatProgram(parsed.program);
}

function commentTexts(text: string): string[] {
  return parseNacl(text, 'x.nacl').program.comments.map((c) => c.text);
}

describe('nacl fmt', () => {
  for (const example of examples()) {
    it(`keeps the syntax tree of ${example.name}`, () => {
      const once = fmt(example.text);
      expect(withoutSpans(parseNacl(once, 'x.nacl').program)).toEqual(withoutSpans(parseNacl(example.text, 'x.nacl').program));
    });

    it(`is idempotent on ${example.name}`, () => {
      const once = fmt(example.text);
      expect(fmt(once)).toBe(once);
    });

    it(`keeps every comment of ${example.name} in order`, () => {
      expect(commentTexts(fmt(example.text))).toEqual(commentTexts(example.text));
    });
  }

  it('lays out an element with four-space indentation and one member per line', () => {
    expect(fmt('Iface eth0 {index:0,address:10.0.0.1,   netmask: 255.255.255.0}')).toBe(
      'Iface eth0 {\n    index: 0,\n    address: 10.0.0.1,\n    netmask: 255.255.255.0\n}\n',
    );
  });

  it('lays out functions with one statement per line', () => {
    expect(fmt('Filter::IP f { if (ip.ttl>5 && ct.state==new) { accept } else { log("x\\n") drop } drop }')).toBe(
      [
        'Filter::IP f {',
        '    if (ip.ttl > 5 && ct.state == new) {',
        '        accept',
        '    } else {',
        '        log("x\\n")',
        '        drop',
        '    }',
        '    drop',
        '}',
        '',
      ].join('\n'),
    );
  });

  it('keeps a trailing comment on the line of its member', () => {
    expect(fmt('Timer t {\n  interval: 25, // every 25 s\n  data: [cpu]\n}')).toBe(
      'Timer t {\n    interval: 25, // every 25 s\n    data: [cpu]\n}\n',
    );
  });

  it('keeps at most one blank line between elements', () => {
    expect(fmt('a: 1\n\n\n\nb: 2\nc: 3')).toBe('a: 1\n\nb: 2\nc: 3\n');
  });

  it('keeps operator spellings and parentheses as written', () => {
    expect(fmt('Filter::IP f { if (!(a or b) and not c IN d) { drop } drop }')).toContain('if (!(a or b) and not c IN d) {');
  });

  it('round-trips generated programs: same tree, idempotent, comments kept', () => {
    fc.assert(
      fc.property(program, (text) => {
        const parsed = parseNacl(text, 'x.nacl');
        fc.pre(!parsed.diagnostics.some((d) => d.severity === 'error'));
        const once = formatProgram(parsed.program);
        const reparsed = parseNacl(once, 'x.nacl');
        expect(reparsed.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
        expect(withoutSpans(reparsed.program)).toEqual(withoutSpans(parsed.program));
        expect(reparsed.program.comments.map((c) => c.text)).toEqual(parsed.program.comments.map((c) => c.text));
        expect(formatProgram(reparsed.program)).toBe(once);
      }),
      { numRuns: 300 },
    );
  });
});
