import { programToYaml } from '../../compiler/yaml-export.ts';
import { parseNacl } from '../../grammar/parse.ts';
import { hasErrors } from '../../compiler/diagnostics/diagnostic.ts';
import type { LineMap } from '../../grammar/span.ts';
import { parseFormat, readSource } from '../io.ts';
import { printDiagnostics } from './check.ts';

/** `nacl convert FILE --to yaml`: the YAML form of a .nacl file on stdout. */
export function runConvert(file: string, options: { to: string }): number {
  parseFormat(options.to, ['yaml'] as const, 'target');
  const parsed = parseNacl(readSource(file), file);
  if (hasErrors(parsed.diagnostics)) {
    printDiagnostics(parsed.diagnostics, new Map<string, LineMap>([[file, parsed.lines]]));
    return 1;
  }
  process.stdout.write(programToYaml(parsed.program));
  return 0;
}
