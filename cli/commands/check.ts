import { checkSource } from '../../compiler/check.ts';
import { hasErrors, type Diagnostic } from '../../compiler/diagnostics/diagnostic.ts';
import { toJson } from '../../compiler/diagnostics/render-json.ts';
import { toSarif } from '../../compiler/diagnostics/render-sarif.ts';
import { renderText } from '../../compiler/diagnostics/render-text.ts';
import { COMPILER_VERSION } from '../../compiler/version.ts';
import type { LineMap } from '../../grammar/span.ts';
import { parseFormat, readSource, UsageError, useColor } from '../io.ts';

export interface CheckOptions {
  format: string;
}

/**
 * `nacl check FILE...`: returns the exit status. A file that cannot be read
 * is reported and the others still checked; the status is 2 then.
 */
export function runCheck(files: string[], options: CheckOptions): number {
  const format = parseFormat(options.format, ['text', 'json', 'sarif'] as const);
  let unreadable = false;
  const all: Diagnostic[] = [];
  const lineMaps = new Map<string, LineMap>();
  for (const file of files) {
    let text: string;
    try {
      text = readSource(file);
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      process.stderr.write(`nacl: ${err.message}\n`);
      unreadable = true;
      continue;
    }
    const result = checkSource(text, file);
    lineMaps.set(file, result.lines);
    all.push(...result.diagnostics);
  }
  if (format === 'json') process.stdout.write(JSON.stringify(toJson(all), null, 2) + '\n');
  else if (format === 'sarif') process.stdout.write(JSON.stringify(toSarif(all, COMPILER_VERSION), null, 2) + '\n');
  else printDiagnostics(all, lineMaps);
  return unreadable ? 2 : hasErrors(all) ? 1 : 0;
}

export function printDiagnostics(diagnostics: readonly Diagnostic[], lineMaps: Map<string, LineMap>): void {
  const color = useColor(process.stderr);
  for (const d of diagnostics) process.stderr.write(renderText(d, lineMaps.get(d.span.file), { color }) + '\n\n');
  const errors = diagnostics.filter((d) => d.severity === 'error').length;
  const warnings = diagnostics.length - errors;
  if (diagnostics.length > 0) {
    process.stderr.write(`${errors} error${errors === 1 ? '' : 's'}, ${warnings} warning${warnings === 1 ? '' : 's'}\n`);
  }
}
