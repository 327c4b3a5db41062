import { parseNacl } from '../grammar/parse.ts';
import type { Program } from '../grammar/ast.ts';
import type { LineMap } from '../grammar/span.ts';
import { sortDiagnostics, type Diagnostic } from './diagnostics/diagnostic.ts';

export interface CheckResult {
  readonly diagnostics: Diagnostic[];
  readonly lines: LineMap;
  readonly program: Program;
}

/** Every stage that exists, on one source text: what `nacl check` runs. Never throws. */
export function checkSource(text: string, file: string): CheckResult {
  const parsed = parseNacl(text, file);
  return { diagnostics: sortDiagnostics(parsed.diagnostics), lines: parsed.lines, program: parsed.program };
}
