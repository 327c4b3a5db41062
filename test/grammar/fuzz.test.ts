import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { formatProgram } from '../../grammar/format.ts';
import { parseNacl } from '../../grammar/parse.ts';
import { withoutSpans } from '../helpers/ast.ts';
import { ipv4, program } from '../helpers/nacl-arbitrary.ts';

const vocabulary = fc.oneof(
  fc.constantFrom(
    '{', '}', '[', ']', '(', ')', ',', ':', '::', '.', '/', '-', '==', '!=', '<', '>', '<=', '>=', '&&', '||', '!',
    'in', 'IN', 'and', 'or', 'not', 'if', 'else', 'true', 'false', 'Iface', 'Filter', 'Nat', 'IP', 'TCP', 'accept',
    'drop', 'ip.saddr', 'tcp.dport', 'x', 'eth0', '"s"', '"\\n"', '"', '# c\n', '// c\n', '/* c */', '/*', '*/',
    '0', '80', '08', '1.5', '10.0.0.0/8', '1.2.3', '256.1.1.1', 'fe80::1', '_', '=', '%', '\\',
  ),
  ipv4,
);

/** The parser must answer every input with diagnostics, never an exception. */
function parsesWithoutThrowing(text: string): void {
  const result = parseNacl(text, 'fuzz.nacl');
  expect(Array.isArray(result.diagnostics)).toBe(true);
  for (const d of result.diagnostics) {
    expect(d.span.startLine).toBeGreaterThanOrEqual(1);
    expect(d.span.startColumn).toBeGreaterThanOrEqual(1);
    expect(d.span.startOffset).toBeLessThanOrEqual(text.length);
  }
  // Whatever parsed cleanly must also survive the formatter.
  if (!result.diagnostics.some((d) => d.severity === 'error')) {
    const again = parseNacl(formatProgram(result.program), 'fuzz.nacl');
    expect(again.diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    expect(withoutSpans(again.program)).toEqual(withoutSpans(result.program));
  }
}

describe('parser robustness', () => {
  it('never throws on random token sequences', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(vocabulary, fc.constantFrom(' ', '', '\n')), { maxLength: 60 }), (tokens) => {
        parsesWithoutThrowing(tokens.map(([t, s]) => t + s).join(''));
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws on random strings', () => {
    fc.assert(fc.property(fc.string({ maxLength: 200, unit: 'binary' }), parsesWithoutThrowing), { numRuns: 1000 });
  });

  it('never throws on random bytes read as text', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => parsesWithoutThrowing(Buffer.from(bytes).toString('latin1'))),
      { numRuns: 1000 },
    );
  });

  it('never throws on valid programs with one token cut out', () => {
    fc.assert(
      fc.property(program, fc.nat(), fc.nat({ max: 5 }), (text, at, len) => {
        const i = text.length === 0 ? 0 : at % text.length;
        parsesWithoutThrowing(text.slice(0, i) + text.slice(i + len));
      }),
      { numRuns: 500 },
    );
  });
});
