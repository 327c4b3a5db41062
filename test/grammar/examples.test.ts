import { describe, expect, it } from 'vitest';
import { parseNacl } from '../../grammar/parse.ts';
import { compactSpans } from '../helpers/ast.ts';
import { examples } from '../helpers/examples.ts';

describe('the shipped examples', () => {
  for (const example of examples()) {
    it(`${example.name} parses with no syntax error`, () => {
      const { diagnostics } = parseNacl(example.text, example.name);
      expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
    });

    it(`${example.name} has the recorded syntax tree`, () => {
      const { program } = parseNacl(example.text, example.name);
      expect(compactSpans(program)).toMatchSnapshot();
    });
  }
});
