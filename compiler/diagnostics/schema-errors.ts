import type { ErrorObject } from 'ajv';

/*
 * ajv reports a value that fits no branch of a `oneOf` three times over:
 * once per branch and once for the `oneOf`, none of them saying what would
 * fit. A person editing YAML wants one message per mistake, so this keeps
 * the errors of the branch whose type the value has, or, when no branch
 * has it, says in one line what the value may be; and an `enum` error
 * lists the allowed values.
 */

export interface SchemaProblem {
  /** Where the value is, as keys and indexes. */
  readonly path: string[];
  /** For an unknown key: the key, which is where to point. */
  readonly key?: string;
  readonly message: string;
}

type Schema = { type?: string | string[]; enum?: unknown[]; const?: unknown };

export function schemaProblems(errors: readonly ErrorObject[], data: unknown): SchemaProblem[] {
  const dropped = new Set<ErrorObject>();
  const replaced = new Map<ErrorObject, string>();
  for (const one of errors.filter((e) => e.keyword === 'oneOf')) {
    const prefix = `${one.schemaPath}/`;
    const branches = (one.parentSchema as { oneOf?: Schema[] } | undefined)?.oneOf ?? [];
    const inBranch = errors.filter((e) => e.schemaPath.startsWith(prefix));
    const value = valueAt(data, one.instancePath);
    const fitting = branches.findIndex((b) => b.type !== undefined && typeMatches(b.type, value));
    if (fitting >= 0) {
      // The value is of this branch's type: its own errors say what is wrong.
      for (const e of inBranch) if (!e.schemaPath.startsWith(`${prefix}${fitting}/`)) dropped.add(e);
      dropped.add(one);
    } else {
      for (const e of inBranch) dropped.add(e);
      replaced.set(one, `must be ${branches.map(describe).join(', or ')}`);
    }
  }
  // A key with a bad name: ajv reports the name's error at the map, and apart
  // from it "property name must be valid" with the name. One problem, at the key.
  const badNames = new Map<ErrorObject, ErrorObject>();
  for (const names of errors.filter((e) => e.keyword === 'propertyNames')) {
    const inner = errors.find((e) => e.instancePath === names.instancePath && e.schemaPath.startsWith(`${names.schemaPath}/`) && !dropped.has(e));
    if (inner) dropped.add(inner);
    badNames.set(names, inner ?? names);
  }
  return errors
    .filter((e) => !dropped.has(e))
    .map((e) => {
      const path = e.instancePath.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
      const unknown = (e.params as { additionalProperty?: string }).additionalProperty;
      if (unknown !== undefined) return { path, key: unknown, message: `unknown key ${unknown}` };
      const badName = badNames.get(e);
      if (badName) {
        const name = String((e.params as { propertyName?: string }).propertyName);
        return { path, key: name, message: `'${name}' is not a valid name: it ${badName === e ? 'is not allowed here' : messageOf(badName)}` };
      }
      return { path, message: replaced.get(e) ?? messageOf(e) };
    });
}

function messageOf(e: ErrorObject): string {
  if (e.keyword === 'enum') return `must be one of: ${((e.params as { allowedValues?: unknown[] }).allowedValues ?? []).join(', ')}`;
  return e.message ?? 'is not valid';
}

function describe(s: Schema): string {
  if (s.enum) return s.enum.join(' or ');
  if (s.const !== undefined) return String(s.const);
  const types = Array.isArray(s.type) ? s.type : [s.type ?? 'value'];
  return types.map((t) => (t === 'object' ? 'an object' : t === 'array' ? 'a list' : `a ${t}`)).join(' or ');
}

function typeMatches(type: string | string[], value: unknown): boolean {
  const types = Array.isArray(type) ? type : [type];
  return types.some((t) => {
    if (t === 'array') return Array.isArray(value);
    if (t === 'object') return typeof value === 'object' && value !== null && !Array.isArray(value);
    if (t === 'null') return value === null;
    if (t === 'integer') return Number.isInteger(value);
    return typeof value === t;
  });
}

function valueAt(data: unknown, pointer: string): unknown {
  let v = data;
  for (const part of pointer.split('/').slice(1)) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part.replace(/~1/g, '/').replace(/~0/g, '~')];
  }
  return v;
}
