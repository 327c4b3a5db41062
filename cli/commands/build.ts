import { basename } from 'node:path';
import { generateModule } from '../../compiler/codegen/emit.ts';
import { readImage, writeImage } from '../../compiler/image.ts';
import { parseFormat, writeBytes } from '../io.ts';
import { loadConfig } from '../load.ts';
import { runtimeBundle } from '../runtime-bundle.ts';
import { renderSummary } from './inspect.ts';

export interface BuildOptions {
  output?: string;
  emit?: string;
}

/** `nacl build FILE [-o IMAGE] [--emit ir|js]` (cli.md). */
export function runBuild(file: string, options: BuildOptions): number {
  const emit = options.emit === undefined ? undefined : parseFormat(options.emit, ['ir', 'js'] as const, 'output');
  const compiled = loadConfig(file);
  if (!compiled) return 1;
  const ir = compiled.ir!;
  if (emit === 'ir') {
    process.stdout.write(JSON.stringify(ir, null, 2) + '\n');
    return 0;
  }
  const code = generateModule(ir);
  if (emit === 'js') {
    process.stdout.write(code);
    return 0;
  }
  const output = options.output ?? `${basename(file).replace(/\.(nacl|ya?ml)$/i, '')}.nimg`;
  const bytes = writeImage(ir, code, runtimeBundle());
  writeBytes(output, bytes);
  const loaded = readImage(bytes);
  if (!loaded.ok) throw new Error(`the image just written does not read back: ${loaded.message}`);
  process.stdout.write(renderSummary(loaded.image, output));
  return 0;
}
