/*
 * `npm run bench:check`: how long `nacl check` takes. In-process parse time
 * for every example and for generated 1k/10k-rule configs, and the cold wall
 * time of the CLI on a small file (Node start-up included). Each row shows
 * the ratio to its target (below 1.00 = within target).
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkSource } from '../compiler/check.ts';
import { aclConfig } from './generate.ts';

const root = join(import.meta.dirname, '..');

function timeIt(fn: () => void, minMs = 200): number {
  fn(); // warm-up
  let runs = 0;
  const start = performance.now();
  while (performance.now() - start < minMs || runs < 3) {
    fn();
    runs++;
  }
  return (performance.now() - start) / runs;
}

interface Row {
  what: string;
  ms: number;
  targetMs?: number;
}
const rows: Row[] = [];

for (const f of readdirSync(join(root, 'examples')).filter((f) => f.endsWith('.nacl')).sort()) {
  const text = readFileSync(join(root, 'examples', f), 'utf8');
  rows.push({ what: `check ${f}`, ms: timeIt(() => checkSource(text, f)) });
}
for (const n of [1000, 10000]) {
  const text = aclConfig(n);
  const ms = timeIt(() => checkSource(text, `acl-${n}.nacl`), 1000);
  rows.push({ what: `check ${n}-rule config (${Math.round(text.length / 1024)} KiB)`, ms, ...(n === 10000 ? { targetMs: 500 } : {}) });
}

const small = join(root, 'examples', 'conntrack.nacl');
const cold: number[] = [];
for (let i = 0; i < 7; i++) {
  const start = performance.now();
  const r = spawnSync(process.execPath, [join(root, 'dist', 'nacl.js'), 'check', small], { encoding: 'utf8' });
  cold.push(performance.now() - start);
  if (r.status !== 0) throw new Error(`nacl check failed: ${r.stderr}`);
}
cold.sort((a, b) => a - b);
rows.push({ what: 'cold `nacl check` on a small file (median of 7)', ms: cold[3]!, targetMs: 250 });
const nodeOnly: number[] = [];
for (let i = 0; i < 7; i++) {
  const start = performance.now();
  spawnSync(process.execPath, ['-e', '0']);
  nodeOnly.push(performance.now() - start);
}
nodeOnly.sort((a, b) => a - b);
rows.push({ what: 'baseline: `node -e 0` (median of 7)', ms: nodeOnly[3]! });

const width = Math.max(...rows.map((r) => r.what.length));
console.log(`${'what'.padEnd(width)}  ${'ms'.padStart(9)}  ${'target'.padStart(7)}  ratio`);
for (const r of rows) {
  const target = r.targetMs === undefined ? '' : String(r.targetMs);
  const ratio = r.targetMs === undefined ? '' : (r.ms / r.targetMs).toFixed(2);
  console.log(`${r.what.padEnd(width)}  ${r.ms.toFixed(3).padStart(9)}  ${target.padStart(7)}  ${ratio}`);
}
