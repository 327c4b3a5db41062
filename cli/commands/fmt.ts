import { writeFileSync } from 'node:fs';
import { parseNacl } from '../../grammar/parse.ts';
import { formatProgram } from '../../grammar/format.ts';
import { hasErrors } from '../../compiler/diagnostics/diagnostic.ts';
import type { LineMap } from '../../grammar/span.ts';
import { readSource, UsageError } from '../io.ts';
import { printDiagnostics } from './check.ts';

export interface FmtOptions {
  check?: boolean;
  write?: boolean;
}

/**
 * `nacl fmt FILE...`: prints the canonical form, rewrites files (--write) or
 * reports the files that are not formatted (--check). A file with syntax
 * errors is never rewritten.
 */
export function runFmt(files: string[], options: FmtOptions): number {
  if (options.check && options.write) throw new UsageError('--check and --write cannot be used together');
  let status = 0;
  for (const file of files) {
    const text = readSource(file);
    const parsed = parseNacl(text, file);
    if (hasErrors(parsed.diagnostics)) {
      printDiagnostics(parsed.diagnostics.filter((d) => d.severity === 'error'), new Map<string, LineMap>([[file, parsed.lines]]));
      status = 1;
      continue;
    }
    const formatted = formatProgram(parsed.program);
    if (options.check) {
      if (formatted !== text) {
        process.stderr.write(`${file}: not formatted (run nacl fmt --write ${file})\n`);
        status = 1;
      }
    } else if (options.write) {
      if (formatted !== text) writeFileSync(file, formatted);
    } else {
      process.stdout.write(formatted);
    }
  }
  return status;
}
