import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import AjvDraft7 from 'ajv';
import addFormats from 'ajv-formats';
import { ROOT } from './examples.ts';

export function loadJson(path: string): any {
  return JSON.parse(readFileSync(join(ROOT, path), 'utf8'));
}

/** A validator for one of our schemas in schemas/ (JSON Schema 2020-12). */
export function ourSchema(name: string) {
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  addFormats.default(ajv);
  return ajv.compile(loadJson(`schemas/${name}`));
}

/** The official SARIF 2.1.0 schema (draft-04, which ajv reads as draft-07 once `id` is `$id`). */
export function sarifSchema() {
  const schema = loadJson('test/fixtures/schemas/sarif-2.1.0-rtm.5.json');
  schema.$id = schema.id;
  delete schema.id;
  delete schema.$schema;
  // The schema's language pattern is not a valid unicode-mode regular expression.
  const ajv = new AjvDraft7.default({ allErrors: true, strict: false, unicodeRegExp: false });
  addFormats.default(ajv);
  return ajv.compile(schema);
}
