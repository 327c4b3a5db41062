import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runDemo, renderDemo } from '../../appliances/demo.ts';
import { loadConfig } from '../load.ts';
import { UsageError } from '../io.ts';

/** `nacl demo [FILE]` (npm run demo): the demo appliance on a simulated network. */
export function runDemoCommand(file: string | undefined): number {
  const path = file ?? join('examples', 'demo.nacl');
  if (!existsSync(path)) throw new UsageError(`${path} not found: run the demo from the project root (npm run demo)`);
  const compiled = loadConfig(path, { quietWarnings: true });
  if (!compiled) return 1;
  process.stdout.write(renderDemo(runDemo(compiled.ir!)));
  return 0;
}
