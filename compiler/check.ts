import type { Program } from '../grammar/ast.ts';
import type { LineMap } from '../grammar/span.ts';
import { compileSource } from './compile.ts';
import type { Diagnostic } from './diagnostics/diagnostic.ts';
import type { Ir } from './ir.ts';

export interface CheckResult {
  readonly diagnostics: Diagnostic[];
  readonly lines: LineMap;
  readonly program: Program;
  readonly ir: Ir | null;
}

/** Every stage that exists, on one source text: what `nacl check` runs. Never throws. */
export function checkSource(text: string, file: string): CheckResult {
  return compileSource(text, file);
}
