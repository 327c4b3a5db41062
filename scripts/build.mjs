// Bundles the CLI into dist/ so that `npx nacl` starts fast: one ESM entry,
// with the subcommands split into chunks loaded on demand. Also bundles the
// appliance runtime that `nacl build` puts into every image: one IIFE,
// minified, free of Node APIs (it runs in a bare vm context).
import { build } from 'esbuild';
import { rmSync, writeFileSync } from 'node:fs';

const INTRINSICS = [
  'Array', 'ArrayBuffer', 'BigInt', 'BigInt64Array', 'BigUint64Array', 'Boolean', 'DataView', 'Date', 'Error', 'EvalError',
  'Float32Array', 'Float64Array', 'Function', 'Int16Array', 'Int32Array', 'Int8Array', 'JSON', 'Map', 'Math', 'Number',
  'Object', 'Promise', 'Proxy', 'RangeError', 'ReferenceError', 'Reflect', 'RegExp', 'Set', 'String', 'Symbol',
  'SyntaxError', 'TypeError', 'URIError', 'Uint16Array', 'Uint32Array', 'Uint8Array', 'Uint8ClampedArray', 'WeakMap',
  'WeakRef', 'WeakSet', 'decodeURI', 'decodeURIComponent', 'encodeURI', 'encodeURIComponent', 'isFinite', 'isNaN',
  'parseFloat', 'parseInt',
];

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
const runtime = await build({
  entryPoints: ['runtime/image-entry.ts'],
  write: false,
  bundle: true,
  format: 'iife',
  globalName: 'NaclRuntime',
  platform: 'neutral',
  target: 'es2022',
  // Names stay readable: the Timer item stack-sampling and stack traces
  // print them. That costs about 40 KiB of the image; NACL_NO_MINIFY=1
  // keeps the whitespace too.
  minifyWhitespace: process.env.NACL_NO_MINIFY !== '1',
  minifySyntax: process.env.NACL_NO_MINIFY !== '1',
  minifyIdentifiers: false,
  legalComments: 'none',
  logLevel: 'warning',
});
writeFileSync('dist/runtime-bundle.js', bindIntrinsics(runtime.outputFiles[0].text));

/*
 * In a node:vm context every read of a global (`Math`, `Uint8Array`, ...)
 * goes through Node's contextify interceptor, which costs about a
 * microsecond: `Math.imul` in the conntrack hash and `Math.min` in a bounds
 * check made it a third of the appliance's time on TAP devices. So the
 * bundle runs inside a function that reads each intrinsic it names once, at
 * load, into a local binding. The list is fixed (not read from this Node) so
 * that images stay byte-identical across Node versions.
 */
function bindIntrinsics(bundle) {
  const used = INTRINSICS.filter((name) => new RegExp(`(?<![\\w$.])${name}(?![\\w$])`).test(bundle));
  return `var NaclRuntime=(function(){"use strict";const{${used.join(',')}}=globalThis;\n${bundle}return NaclRuntime})();\n`;
}
