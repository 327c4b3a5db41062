import { describe, expect, it } from 'vitest';
import { compileSource } from '../../compiler/compile.ts';
import { examples } from '../helpers/examples.ts';
import { ourSchema } from '../helpers/schemas.ts';

const validate = ourSchema('ir.schema.json');

describe('the IR of every example', () => {
  for (const example of examples()) {
    it(`${example.name} compiles with no error to an IR that validates against schemas/ir.schema.json`, () => {
      const { ir, diagnostics } = compileSource(example.text, example.name);
      expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
      expect(validate(ir), JSON.stringify(validate.errors?.slice(0, 3))).toBe(true);
    });

    it(`${example.name} has the recorded IR`, () => {
      expect(compileSource(example.text, example.name).ir).toMatchSnapshot();
    });
  }
});
