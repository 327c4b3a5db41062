import { programToYaml } from '../../compiler/yaml-export.ts';
import { parseFormat } from '../io.ts';
import { loadConfig } from '../load.ts';

/**
 * `nacl convert FILE --to yaml`: the YAML form of a .nacl file on stdout.
 * Only a valid config is converted: the YAML form cannot hold what some
 * errors are made of (two elements of one name become one map key), so a
 * converted file could pass where its source failed.
 */
export function runConvert(file: string, options: { to: string }): number {
  parseFormat(options.to, ['yaml'] as const, 'target');
  const compiled = loadConfig(file, { quietWarnings: true });
  if (!compiled) return 1;
  process.stdout.write(programToYaml(compiled.program));
  return 0;
}
