import { compileSource, type CompileResult } from '../compiler/compile.ts';
import type { LineMap } from '../grammar/span.ts';
import { printDiagnostics } from './commands/check.ts';
import { readSource } from './io.ts';

/**
 * Reads and compiles one config for a command that needs its IR. Prints the
 * diagnostics (errors and warnings) on stderr; returns null when there are
 * errors, so the command exits 1.
 */
export function loadConfig(file: string, options: { quietWarnings?: boolean } = {}): CompileResult | null {
  const result = compileSource(readSource(file), file);
  const shown = options.quietWarnings ? result.diagnostics.filter((d) => d.severity === 'error') : result.diagnostics;
  if (shown.length > 0) printDiagnostics(shown, new Map<string, LineMap>([[file, result.lines]]));
  return result.ir ? result : null;
}
