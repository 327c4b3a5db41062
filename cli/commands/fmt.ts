import { parseNacl } from '../../grammar/parse.ts';
import { formatProgram } from '../../grammar/format.ts';
import { hasErrors } from '../../compiler/diagnostics/diagnostic.ts';
import { isYamlFile } from '../../compiler/yaml-file.ts';
import type { LineMap } from '../../grammar/span.ts';
import { readSource, UsageError, writeBytes } from '../io.ts';
import { printDiagnostics } from './check.ts';

export interface FmtOptions {
  check?: boolean;
  write?: boolean;
}

/**
 * `nacl fmt FILE...`: prints the canonical form, rewrites files (--write) or,
 * silently, tells by its exit status whether every file is formatted
 * (--check, cli.md). A file with syntax errors is never rewritten. A file
 * that cannot be read or written is reported and the others still done:
 * exit 2 then, as for any I/O error.
 */
export function runFmt(files: string[], options: FmtOptions): number {
  if (options.check && options.write) throw new UsageError('--check and --write cannot be used together');
  let status = 0;
  for (const file of files) {
    try {
      status = Math.max(status, fmtOne(file, options));
    } catch (err) {
      if (!(err instanceof UsageError)) throw err;
      process.stderr.write(`nacl: ${err.message}\n`);
      status = 2;
    }
  }
  return status;
}

function fmtOne(file: string, options: FmtOptions): number {
  if (isYamlFile(file)) throw new UsageError(`${file}: fmt formats the .nacl form; a YAML config keeps the layout you give it`);
  const text = readSource(file);
  const parsed = parseNacl(text, file);
  if (hasErrors(parsed.diagnostics)) {
    printDiagnostics(parsed.diagnostics.filter((d) => d.severity === 'error'), new Map<string, LineMap>([[file, parsed.lines]]));
    return 1;
  }
  const formatted = formatProgram(parsed.program);
  if (options.check) return formatted === text ? 0 : 1;
  if (options.write) {
    if (formatted !== text) writeBytes(file, formatted);
  } else {
    process.stdout.write(formatted);
  }
  return 0;
}
