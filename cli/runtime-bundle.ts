import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The bundled appliance runtime (dist/runtime-bundle.js, made by the build).
 * Found next to the running CLI bundle, or in dist/ above the source tree.
 */
export function runtimeBundle(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    for (const candidate of [join(dir, 'runtime-bundle.js'), join(dir, 'dist', 'runtime-bundle.js')]) {
      if (existsSync(candidate)) return readFileSync(candidate, 'utf8');
    }
    dir = dirname(dir);
  }
  throw new Error('dist/runtime-bundle.js is missing: run npm run build');
}
