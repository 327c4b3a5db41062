// Bundles the CLI into dist/ so that `npx nacl` starts fast: one ESM entry,
// with the subcommands split into chunks loaded on demand. Also bundles the
// appliance runtime that `nacl build` puts into every image: one IIFE,
// minified, free of Node APIs (it runs in a bare vm context).
import { build } from 'esbuild';
import { rmSync } from 'node:fs';

rmSync('dist', { recursive: true, force: true });
await build({
  entryPoints: { nacl: 'cli/nacl.ts' },
  outdir: 'dist',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: 'linked',
  banner: { js: '#!/usr/bin/env node\nimport { createRequire as __naclCreateRequire } from "node:module"; const require = __naclCreateRequire(import.meta.url);' },
  logLevel: 'warning',
});
await build({
  entryPoints: ['runtime/image-entry.ts'],
  outfile: 'dist/runtime-bundle.js',
  bundle: true,
  format: 'iife',
  globalName: 'NaclRuntime',
  platform: 'neutral',
  target: 'es2022',
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
});
