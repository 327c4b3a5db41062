import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const ROOT = join(import.meta.dirname, '..', '..');
export const EXAMPLES_DIR = join(ROOT, 'examples');

/** Every `.nacl` example shipped in examples/ (the upstream ones and ours). */
export function examples(): { name: string; path: string; text: string }[] {
  return readdirSync(EXAMPLES_DIR)
    .filter((f) => f.endsWith('.nacl'))
    .sort()
    .map((name) => ({ name, path: join(EXAMPLES_DIR, name), text: readFileSync(join(EXAMPLES_DIR, name), 'utf8') }));
}
