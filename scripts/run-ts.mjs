// Runs a TypeScript entry point (benchmarks, tools) without a TS loader
// dependency: esbuild bundles it to a temporary ESM file, which is imported.
import { build } from 'esbuild';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const [entry, ...rest] = process.argv.slice(2);
if (!entry) {
  console.error('usage: node scripts/run-ts.mjs FILE.ts [args...]');
  process.exit(2);
}
// Inside node_modules so the bundle's bare imports resolve to the project's packages.
const cache = resolve('node_modules', '.cache');
mkdirSync(cache, { recursive: true });
const dir = mkdtempSync(join(cache, 'nacl-run-'));
const out = join(dir, 'entry.mjs');
await build({
  entryPoints: [resolve(entry)],
  outfile: out,
  bundle: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  logLevel: 'warning',
  banner: { js: `import { createRequire as __cr } from "node:module"; const require = __cr(${JSON.stringify(pathToFileURL(resolve(entry)).href)});` },
  define: { 'import.meta.dirname': JSON.stringify(resolve(entry, '..')) },
});
process.argv = [process.argv[0], resolve(entry), ...rest];
try {
  await import(pathToFileURL(out).href);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
