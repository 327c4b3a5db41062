import { describe, expect, it } from 'vitest';
import { checkSource } from '../../compiler/check.ts';
import { diagnostic } from '../../compiler/diagnostics/diagnostic.ts';
import { toJson } from '../../compiler/diagnostics/render-json.ts';
import { toSarif } from '../../compiler/diagnostics/render-sarif.ts';
import { renderText } from '../../compiler/diagnostics/render-text.ts';
import { LineMap } from '../../grammar/span.ts';
import { ourSchema, sarifSchema } from '../helpers/schemas.ts';

const BAD = 'Iface eth0 {\n\tindex: 0,\n\taddress 10.0.0.1\n}\nx: {}\ny: 08\n';

describe('diagnostic rendering', () => {
  const { diagnostics, lines } = checkSource(BAD, 'bad.nacl');

  it('renders text as file:line:col: severity[code]: message with the source line and a caret', () => {
    const text = renderText(diagnostics[0]!, lines, { color: false });
    expect(text.split('\n')).toEqual([
      "bad.nacl:3:10: error[E102]: unexpected '10.0.0.1', expected ':'",
      '  |',
      '3 | \taddress 10.0.0.1',
      '  | \t        ^^^^^^^^',
    ]);
  });

  it('renders the help line and related spans', () => {
    const lm = new LineMap('a.nacl', 'a: 1\na: 2\n');
    const d = diagnostic('E202', lm.span(5, 6), 'Element a has already been defined', {
      related: [{ span: lm.span(0, 1), message: 'first defined here' }],
      help: 'rename one of them',
    });
    expect(renderText(d, lm, { color: false })).toBe(
      [
        'a.nacl:2:1: error[E202]: Element a has already been defined',
        '  |',
        '2 | a: 2',
        '  | ^',
        'note: first defined here at a.nacl:1:1',
        '  |',
        '1 | a: 1',
        '  | ^',
        'help: rename one of them',
      ].join('\n'),
    );
  });

  it('colours only when asked', () => {
    expect(renderText(diagnostics[0]!, lines, { color: false })).not.toContain('\x1b[');
    expect(renderText(diagnostics[0]!, lines, { color: true })).toContain('\x1b[');
  });

  it('produces JSON that validates against schemas/diagnostics.schema.json', () => {
    const validate = ourSchema('diagnostics.schema.json');
    const json = toJson(diagnostics);
    expect(validate(json), JSON.stringify(validate.errors)).toBe(true);
    expect(json.map((d) => `${d.code}@${d.line}:${d.column}`)).toEqual(['E102@3:10', 'E102@5:5', 'W10@6:4']);
  });

  it('produces SARIF that validates against the official SARIF 2.1.0 schema', () => {
    const validate = sarifSchema();
    const sarif = toSarif(diagnostics, '0.1.0') as any;
    expect(validate(sarif), JSON.stringify(validate.errors)).toBe(true);
    expect(sarif.version).toBe('2.1.0');
    expect(sarif.runs[0].results.map((r: any) => [r.ruleId, r.level, r.locations[0].physicalLocation.region.startLine])).toEqual([
      ['E102', 'error', 3],
      ['E102', 'error', 5],
      ['W10', 'warning', 6],
    ]);
  });

  it('produces valid SARIF for related locations and for no results at all', () => {
    const validate = sarifSchema();
    const lm = new LineMap('a.nacl', 'a: 1\na: 2\n');
    const d = diagnostic('E202', lm.span(5, 6), 'dup', { related: [{ span: lm.span(0, 1), message: 'first' }], help: 'h' });
    expect(validate(toSarif([d], '0.1.0')), JSON.stringify(validate.errors)).toBe(true);
    expect(validate(toSarif([], '0.1.0')), JSON.stringify(validate.errors)).toBe(true);
  });
});

describe('columns', () => {
  it('count characters: one outside the BMP is one column, and the caret sits under the error', () => {
    const text = 'x: "𝄞𝄞"\ny: "𝄞" 1 2\n';
    const result = checkSource(text, "u.nacl");
    const d = result.diagnostics.find((x) => x.code === 'E107')!;
    expect([d.span.startLine, d.span.startColumn, d.span.endColumn]).toEqual([2, 8, 11]);
    const rendered = renderText(d, result.lines, { color: false }).split('\n');
    expect(rendered[2]).toBe('2 | y: "𝄞" 1 2');
    expect(rendered[3]).toBe('  |        ^^^');
  });

  it('are declared as code points in SARIF', () => {
    const sarif = toSarif(checkSource('x: 1 2', 'u.nacl').diagnostics, '0.0.0') as { runs: { columnKind: string }[] };
    expect(sarif.runs[0]!.columnKind).toBe('unicodeCodePoints');
  });
});

describe('a very long line', () => {
  it('is shown as a window around the error, the caret under it', () => {
    const values = Array.from({ length: 200 }, (_, i) => `v${i}: ${i}`).join(' ');
    const text = `${values} bad: 1 2\n`;
    const result = checkSource(text, 'long.nacl');
    const d = result.diagnostics.find((x) => x.code === 'E107')!;
    const [, , shown, caret] = renderText(d, result.lines, { color: false }).split('\n');
    expect(shown!.length).toBeLessThan(200);
    expect(shown).toMatch(/^1 \| ….*bad: 1 2$/);
    expect(shown!.indexOf('1 2')).toBe(caret!.indexOf('^'));
    expect(caret).toMatch(/\^\^\^$/);
  });
});
