import { generateModule } from '../../compiler/codegen/emit.ts';
import { readImage, writeImage } from '../../compiler/image.ts';
import { loadConfig } from '../load.ts';
import { runtimeBundle } from '../runtime-bundle.ts';
import { start, type BootOptions } from './boot.ts';

/** `nacl run FILE --nic ...`: build in memory and boot. */
export async function runRun(file: string, options: BootOptions): Promise<number> {
  const compiled = loadConfig(file, { quietWarnings: true });
  if (!compiled) return 1;
  const loaded = readImage(writeImage(compiled.ir!, generateModule(compiled.ir!), runtimeBundle()));
  if (!loaded.ok) throw new Error(loaded.message);
  return start(loaded.image, file, options);
}
