import { parseFormat, UsageError } from '../io.ts';
import { loadConfig } from '../load.ts';

export interface BuildOptions {
  output?: string;
  emit?: string;
}

/** `nacl build FILE [-o IMAGE] [--emit ir|js]`. */
export async function runBuild(file: string, options: BuildOptions): Promise<number> {
  const emit = options.emit === undefined ? undefined : parseFormat(options.emit, ['ir', 'js'] as const);
  const compiled = loadConfig(file);
  if (!compiled) return 1;
  const ir = compiled.ir!;
  if (emit === 'ir') {
    process.stdout.write(JSON.stringify(ir, null, 2) + '\n');
    return 0;
  }
  throw new UsageError(emit === 'js' ? '--emit js is not available yet' : 'building images is not available yet; use --emit ir');
}
