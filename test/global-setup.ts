import { execFileSync } from 'node:child_process';
import { join } from 'node:path';

/** CLI tests run dist/nacl.js: rebuild it once so they never test a stale bundle. */
export default function setup(): void {
  execFileSync(process.execPath, [join(import.meta.dirname, '..', 'scripts', 'build.mjs')], {
    cwd: join(import.meta.dirname, '..'),
    stdio: 'inherit',
  });
}
