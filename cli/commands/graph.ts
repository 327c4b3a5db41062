import { toDot, toMermaid } from '../../compiler/graph.ts';
import { parseFormat } from '../io.ts';
import { loadConfig } from '../load.ts';

/** `nacl graph FILE [--format dot|mermaid]`. */
export function runGraph(file: string, options: { format: string }): number {
  const format = parseFormat(options.format, ['dot', 'mermaid'] as const);
  const compiled = loadConfig(file, { quietWarnings: true });
  if (!compiled) return 1;
  process.stdout.write(format === 'dot' ? toDot(compiled.ir!) : toMermaid(compiled.ir!));
  return 0;
}
