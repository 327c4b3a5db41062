/*
 * `npm run bench:dataplane`: the whole runtime path on in-process NICs.
 * 64-byte UDP frames through conntrack, prerouting/forward/postrouting
 * chains with a 10-rule and a 1k-rule filter, routing and masquerade; the
 * same with established flows vs a new flow per packet; bytes per conntrack
 * entry; process start to `ready` for `nacl boot`; image size. Targets
 * (issue): >= 2 Mpps established, <= 128 bytes/entry, ready < 50 ms after
 * Node starts, image < 300 KB.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchDataplane } from '../appliances/bench-dataplane.ts';
import { runtimeBundle } from '../cli/runtime-bundle.ts';
import { compileSource } from '../compiler/compile.ts';
import { Conntrack } from '../runtime/conntrack.ts';
import { parsePacketSpec } from '../runtime/packet-spec.ts';
import { rowArgs, runRow } from './child-row.ts';

const root = join(import.meta.dirname, '..');
const seconds = Number(process.env['BENCH_SECONDS'] ?? 2);

function policy(rules: number): string {
  const lines = [
    'Iface eth0 { index: 0, address: 10.0.0.1, netmask: 255.255.255.0 }',
    'Iface eth1 { index: 1, address: 10.1.0.1, netmask: 255.255.255.0, masquerade: true }',
    'Gateway gw { forward: fw, a: { net: 10.0.0.0, netmask: 255.255.255.0, iface: eth0 }, b: { net: 10.1.0.0, netmask: 255.255.255.0, iface: eth1 } }',
    'Filter::IP fw {',
    '  if (ct.state == established) { accept }',
    '  Filter::UDP {',
  ];
  for (let i = 0; i < rules - 2; i++) lines.push(`    if (ip.saddr in 172.${16 + (i >> 8)}.${i & 255}.0/24 and udp.dport == ${2000 + i}) { drop }`);
  lines.push('    if (udp.dport == 5353) { accept }', '  }', '  drop', '}');
  return lines.join('\n');
}

const mpps = (pps: number) => `${(pps / 1e6).toFixed(2)} Mpps`;
const ratio = (a: { packetsPerSecond: number }, b: { packetsPerSecond: number }) => (a.packetsPerSecond / b.packetsPerSecond).toFixed(2);

const spec = parsePacketSpec('udp 10.0.0.5:1000 -> 10.1.0.9:5353');
if (!spec.ok) throw new Error(spec.message);
const rows: [string, string, string][] = [];
// Each throughput row runs in a process of its own, so that rows do not
// share warmed-up (or polluted) inline caches.
const args = rowArgs();
if (args) {
  const [engine, rules, flows] = [args[0], Number(args[1]), Number(args[2])];
  const ir = compileSource(policy(rules), `p${rules}.nacl`).ir!;
  const result = await benchDataplane(ir, 'eth0', [spec.spec], seconds, flows, engine === 'image' ? runtimeBundle() : undefined);
  process.stdout.write(JSON.stringify(result));
  process.exit(0);
}
const row = (engine: 'image' | 'direct', rules: number, flows: number) => runRow('dataplane.ts', [engine, String(rules), String(flows)]);

for (const rules of [10, 1000]) {
  // The baseline: the same runtime modules run directly in a process, outside the image's vm context.
  const direct = row('direct', rules, 1);
  rows.push([`${rules}-rule filter, one established flow, runtime run directly`, mpps(direct.packetsPerSecond), `${direct.nsPerPacket.toFixed(0)} ns/pkt (baseline)`]);
  const est = row('image', rules, 1);
  rows.push([`${rules}-rule filter, one established flow, image`, mpps(est.packetsPerSecond), `${est.nsPerPacket.toFixed(0)} ns/pkt, ${ratio(est, direct)} x baseline (target >= 2 Mpps)`]);
  const fresh = row('image', rules, 16000);
  rows.push([`${rules}-rule filter, 16k flows (new, then established), image`, mpps(fresh.packetsPerSecond), `${fresh.nsPerPacket.toFixed(0)} ns/pkt, ${ratio(fresh, direct)} x baseline`]);
}

const ct = new Conntrack({ timeouts: compileSource(policy(10), 'x').ir!.conntrack.timeouts, limit: 0, reserve: 100000, statefulTcp: false });
rows.push(['conntrack memory per entry', `${ct.bytesPerEntry().toFixed(1)} bytes`, 'target <= 128']);

const dir = mkdtempSync(join(tmpdir(), 'nacl-bench-'));
writeFileSync(join(dir, 'p.nacl'), policy(10));
const image = join(dir, 'p.nimg');
spawnSync(process.execPath, [join(root, 'dist', 'nacl.js'), 'build', join(dir, 'p.nacl'), '-o', image]);
rows.push(['image size (10-rule policy)', `${(statSync(image).size / 1024).toFixed(1)} KiB`, 'target < 300 KB']);

const startups: number[] = [];
const bootMs: number[] = [];
for (let i = 0; i < 5; i++) {
  const started = performance.now();
  const child = spawn(process.execPath, [join(root, 'dist', 'nacl.js'), 'boot', image, '--nic', '0=memory:a', '--nic', '1=memory:b', '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'ignore'] });
  const line = await new Promise<string>((resolve) => child.stdout.once('data', (d) => resolve(String(d))));
  startups.push(performance.now() - started);
  bootMs.push(JSON.parse(line.split('\n')[0]!).bootMs);
  child.kill('SIGTERM');
  await new Promise((r) => child.on('exit', r));
}
const node: number[] = [];
for (let i = 0; i < 5; i++) {
  const started = performance.now();
  spawnSync(process.execPath, ['-e', '0']);
  node.push(performance.now() - started);
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
rows.push(['nacl boot: process start to ready (median of 5)', `${median(startups).toFixed(1)} ms`, `node -e 0 alone: ${median(node).toFixed(1)} ms`]);
rows.push(['nacl boot: image read to ready, in the tender', `${median(bootMs).toFixed(1)} ms`, 'target < 50 ms after Node starts']);

const w = Math.max(...rows.map((r) => r[0].length));
console.log(`${'measure'.padEnd(w)}  ${'value'.padStart(14)}  note`);
for (const [a, b, c] of rows) console.log(`${a.padEnd(w)}  ${b.padStart(14)}  ${c}`);
console.log(`\n${seconds}s per throughput run, one core, Node ${process.version}; numbers vary with machine load.`);
