import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import vm from 'node:vm';
import { describe, expect, it } from 'vitest';
import { generateModule } from '../../../compiler/codegen/emit.ts';
import { compileSource } from '../../../compiler/compile.ts';
import { readImage, writeImage } from '../../../compiler/image.ts';
import { attach, createMemoryNic, memoryNetwork } from '../../../runtime/drivers/memory.ts';
import { SimHost } from '../../../runtime/sim-host.ts';
import { systemClock } from '../../../runtime/clock.ts';
import { bootImage } from '../../../runtime/tender.ts';
import { nacl } from '../../helpers/cli.ts';
import { EXAMPLES_DIR, ROOT } from '../../helpers/examples.ts';
import { ourSchema } from '../../helpers/schemas.ts';

const dir = mkdtempSync(join(tmpdir(), 'nacl-image-'));
const runtime = readFileSync(join(ROOT, 'dist', 'runtime-bundle.js'), 'utf8');
const example = (name: string) => readFileSync(join(EXAMPLES_DIR, name), 'utf8');

/** Runs nacl to its exit: its status, or a note that it was still running after 10 s (then killed). */
async function runToExit(args: string[]): Promise<{ status: number | string | null; stderr: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'dist', 'nacl.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const status = await new Promise<number | string | null>((r) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      r('still running after 10 s');
    }, 10_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      r(code);
    });
  });
  return { status, stderr };
}

function imageOf(text: string, name = 'x.nacl') {
  const ir = compileSource(text, name).ir!;
  return writeImage(ir, generateModule(ir), runtime);
}

describe('images', () => {
  it('are deterministic: the same source gives the same bytes', () => {
    const text = example('gateway_with_forward_chain.nacl');
    expect(Buffer.from(imageOf(text)).equals(Buffer.from(imageOf(text)))).toBe(true);
  });

  it('do not depend on the directory they were built from', () => {
    const text = example('syslog.nacl');
    expect(Buffer.from(imageOf(text, '/a/b/syslog.nacl')).equals(Buffer.from(imageOf(text, 'syslog.nacl')))).toBe(true);
  });

  it('have a manifest that validates against schemas/image-manifest.schema.json', () => {
    const validate = ourSchema('image-manifest.schema.json');
    for (const name of ['lb.nacl', 'vlan.nacl', 'gateway_with_forward_chain.nacl']) {
      const loaded = readImage(imageOf(example(name), name));
      if (!loaded.ok) throw new Error(loaded.message);
      expect(validate(loaded.image.manifest), JSON.stringify(validate.errors)).toBe(true);
    }
  });

  it('are refused with a clear message when corrupt, truncated or of another format version', () => {
    const good = imageOf(example('cidr.nacl'));
    const flipped = Uint8Array.from(good);
    flipped[flipped.length - 10] ^= 0xff;
    expect(readImage(flipped)).toMatchObject({ ok: false, message: expect.stringContaining('does not match its checksum') });
    expect(readImage(good.subarray(0, good.length - 100))).toMatchObject({ ok: false, message: expect.stringContaining('truncated image') });
    const text = new TextDecoder().decode(good).replace('NACL-IMAGE 1', 'NACL-IMAGE 9');
    expect(readImage(new TextEncoder().encode(text))).toMatchObject({ ok: false, message: expect.stringContaining('format version 9 is not supported') });
    expect(readImage(new TextEncoder().encode('hello'))).toMatchObject({ ok: false, message: expect.stringContaining('not a NaCl image') });
  });

  it('are refused, never crash a reader, when the manifest is valid JSON of the wrong shape', () => {
    const good = new TextDecoder().decode(imageOf(example('cidr.nacl')));
    const [header, manifest, ...rest] = good.split('\n');
    const m = JSON.parse(manifest!) as Record<string, unknown>;
    const damaged = (change: (m: Record<string, any>) => void) => {
      const copy = structuredClone(m);
      change(copy);
      return new TextEncoder().encode([header, JSON.stringify(copy), ...rest].join('\n'));
    };
    const cases: [string, (m: Record<string, any>) => void, string][] = [
      ['no summary', (x) => delete x['summary'], "(top level) must have required property 'summary'"],
      ['nics not a list', (x) => (x['nics'] = 5), '/nics must be array'],
      ['a version that is no version', (x) => (x['compilerVersion'] = 'x'), '/compilerVersion must match'],
      ['an Iface without chains', (x) => delete x['summary'].ifaces[0].chains, "/summary/ifaces/0 must have required property 'chains'"],
    ];
    for (const [name, change, message] of cases) {
      expect(readImage(damaged(change)), name).toMatchObject({ ok: false, message: expect.stringContaining(`corrupt image: the manifest ${message}`) });
    }
    const list = new TextEncoder().encode([header, '[1,2]', ...rest].join('\n'));
    expect(readImage(list)).toMatchObject({ ok: false, message: 'corrupt image: the manifest (top level) must be object' });
  });

  it('validate their manifest with code generated from the committed schema', async () => {
    // @ts-expect-error: a plain ESM script without types
    const { manifestValidatorSource, VALIDATOR_PATH } = await import('../../../scripts/manifest-validator.mjs');
    expect(readFileSync(VALIDATOR_PATH, 'utf8'), 'run node scripts/manifest-validator.mjs').toBe(manifestValidatorSource());
  });

  it('stay under 300 KB', () => {
    expect(imageOf(example('gateway_with_forward_chain.nacl')).length).toBeLessThan(300 * 1024);
  });
});

describe('the tender', () => {
  it('boots an image on memory NICs and the appliance answers a ping', async () => {
    const loaded = readImage(imageOf(example('gateway_with_send_time_exceeded.nacl')));
    if (!loaded.ok) throw new Error(loaded.message);
    const lines: string[] = [];
    const running = await bootImage(loaded.image, {
      nics: new Map([
        ['0', { driver: 'memory', name: 'tender-a' }],
        ['1', { driver: 'memory', name: 'tender-b' }],
      ]),
      logFormat: 'text',
      write: (l) => lines.push(l),
      label: 'test',
    });
    expect(lines[0]).toMatch(/^ready: test/);
    const nic = createMemoryNic({ name: 'pinger', mac: Uint8Array.of(2, 0, 0, 0, 9, 9) });
    attach(nic, memoryNetwork.switch('tender-a'));
    const host = new SimHost({ name: 'h', address: '10.0.0.7', prefix: 24, nic, clock: systemClock() });
    host.ping('10.0.0.45');
    for (let i = 0; i < 20 && host.received.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
    expect(host.received.map((r) => [r.src, r.detail])).toEqual([['10.0.0.45', 0]]);
    await running.stop();
    await nic.close();
  });

  it('refuses to boot without a NIC the image needs, naming it', async () => {
    const loaded = readImage(imageOf(example('gateway_with_send_time_exceeded.nacl')));
    if (!loaded.ok) throw new Error(loaded.message);
    await expect(
      bootImage(loaded.image, { nics: new Map([['0', { driver: 'memory', name: 'x' }]]), logFormat: 'text', write: () => {}, label: 't' }),
    ).rejects.toThrow(/needs NIC 1 \(Iface eth1\)/);
  });

  it('runs the image with no access to require, process or fs', async () => {
    const ir = compileSource(example('iface_with_limits.nacl'), 'x.nacl').ir!;
    // A runtime that reports what it can reach instead of booting.
    const probe = `var NaclRuntime = { boot: function (ir, factory, env) { env.log([typeof require, typeof process, typeof globalThis.fs, typeof setTimeout, typeof fetch].join(',')); return { ready: true, stop() {}, statistics() { return {}; }, ruleHits() { return {}; } }; } };`;
    const loaded = readImage(writeImage(ir, generateModule(ir), probe));
    if (!loaded.ok) throw new Error(loaded.message);
    const lines: string[] = [];
    const nics = new Map(['0', '1', '2', '3', '4'].map((k) => [k, { driver: 'memory' as const, name: `probe${k}` }]));
    const running = await bootImage(loaded.image, { nics, logFormat: 'text', write: (l) => lines.push(l), label: 'probe' });
    expect(lines[0]).toBe('undefined,undefined,undefined,undefined,undefined');
    await running.stop();
  });

  // Node's vm routes every global read through an interceptor costing about a
  // microsecond, so the bundle binds the intrinsics once at load (scripts/build.mjs).
  it('runs the bundled runtime without reading a global per packet', async () => {
    const ir = compileSource(
      `Iface inside { index: 0, address: 10.5.0.1, netmask: 255.255.255.0 }
Iface outside { index: 1, address: 10.6.0.1, netmask: 255.255.255.0, masquerade: true }
Gateway gw { forward: fw, a: { net: 10.5.0.0, netmask: 255.255.255.0, iface: inside }, b: { net: 10.6.0.0, netmask: 255.255.255.0, iface: outside } }
Filter::IP fw {
  if (ct.state == established) { accept }
  if (ip.saddr in 10.5.0.0/24) { accept }
  drop
}`,
      'g.nacl',
    ).ir!;
    const context = vm.createContext(Object.create(null));
    vm.runInContext(runtime, context);
    // From here on, count every read of an intrinsic through the context's global.
    const reads = vm.runInContext(
      `(() => {
        const reads = [];
        for (const name of ['Array', 'Date', 'Error', 'Float64Array', 'Int32Array', 'JSON', 'Map', 'Math', 'Number', 'Object', 'Set', 'String', 'Uint16Array', 'Uint32Array', 'Uint8Array']) {
          const value = globalThis[name];
          Object.defineProperty(globalThis, name, { get() { reads.push(name); return value; }, configurable: true });
        }
        return reads;
      })()`,
      context,
    ) as string[];
    const boot = vm.runInContext('NaclRuntime.boot', context) as (ir: unknown, factory: unknown, env: unknown) => { stop(): void };
    const factory = vm.runInContext(generateModule(ir), context);
    const inside = createMemoryNic({ name: 'gi', mac: Uint8Array.of(2, 0, 0, 0, 1, 1) });
    const outside = createMemoryNic({ name: 'go', mac: Uint8Array.of(2, 0, 0, 0, 1, 2) });
    const appliance = boot(vm.runInContext(`(${JSON.stringify(ir)})`, context), factory, {
      nics: new Map([['0', inside], ['1', outside]]),
      clock: systemClock(),
      log: () => {},
      random: Math.random,
    });
    const a = createMemoryNic({ name: 'ha', mac: Uint8Array.of(2, 0, 0, 0, 2, 1) });
    const b = createMemoryNic({ name: 'hb', mac: Uint8Array.of(2, 0, 0, 0, 2, 2) });
    attach(a, inside);
    attach(b, outside);
    const hostA = new SimHost({ name: 'a', address: '10.5.0.7', prefix: 24, gateway: '10.5.0.1', nic: a, clock: systemClock() });
    const hostB = new SimHost({ name: 'b', address: '10.6.0.8', prefix: 24, nic: b, clock: systemClock() });
    // Resolve the neighbours first (ARP), then count from a steady state.
    hostA.ping('10.6.0.8');
    for (let i = 0; i < 1000 && hostA.received.length === 0; i++) await new Promise((r) => setTimeout(r, 2));
    hostA.clear();
    hostB.clear();
    const warmUp = reads.length;
    for (let seq = 1; seq <= 20; seq++) {
      hostA.ping('10.6.0.8', { seq });
      hostA.udp('10.6.0.8', 5000 + seq, 'x');
    }
    for (let i = 0; i < 1000 && (hostA.received.length < 20 || hostB.received.length < 20); i++) await new Promise((r) => setTimeout(r, 2));
    expect(hostA.received.filter((r) => r.protocol === 1 && r.detail === 0).length).toBe(20);
    expect(hostB.received.filter((r) => r.protocol === 17 && r.src === '10.6.0.1').length).toBe(20);
    expect(reads.slice(warmUp)).toEqual([]);
    appliance.stop();
    for (const nic of [a, b, inside, outside]) await nic.close();
  });

  it('serves Prometheus metrics on the host when asked', async () => {
    const loaded = readImage(imageOf(example('conntrack.nacl')));
    if (!loaded.ok) throw new Error(loaded.message);
    const running = await bootImage(loaded.image, {
      nics: new Map([
        ['0', { driver: 'memory', name: 'm0' }],
        ['1', { driver: 'memory', name: 'm1' }],
      ]),
      logFormat: 'text',
      write: () => {},
      label: 'm',
      metrics: '127.0.0.1:0',
    });
    const body = await (await fetch(`http://${running.metricsAddress}/metrics`)).text();
    expect(body).toContain('# TYPE nacl_counter counter');
    expect(body).toMatch(/nacl_counter\{name="eth0.packets_rx"\} 0/);
    expect(body).toContain('nacl_rule_hits_total{rule="my_filter:');
    await running.stop();
  });

  it('exits 2 at once with a plain error, starting nothing, when the metrics port is in use', async () => {
    const { createServer } = await import('node:net');
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
    const port = (taken.address() as { port: number }).port;
    // Before, the appliance was started first and its timers kept the process alive after the error.
    const { status, stderr } = await runToExit(['run', join(EXAMPLES_DIR, 'cidr.nacl'), '--nic', '0=memory:busy', '--metrics', `127.0.0.1:${port}`]);
    taken.close();
    expect(status).toBe(2);
    expect(stderr).toBe(`nacl: --metrics 127.0.0.1:${port}: the port is in use\n`);
  });

  it('exits 2 at once, the NIC it opened closed again, when the capture file cannot be opened', async () => {
    // A UDP NIC holds a socket: left open after the error, it kept the process alive.
    const port = 20000 + Math.floor(Math.random() * 20000);
    const { status, stderr } = await runToExit(['run', join(EXAMPLES_DIR, 'cidr.nacl'), '--nic', `0=udp:${port},127.0.0.1:9`, '--pcap-out', join(dir, 'no', 'such', 'dir')]);
    expect(status).toBe(2);
    expect(stderr).toMatch(/^nacl: .*no such/i);
  });

  it('gives a NIC the MAC the operator names, so two appliances of one image can share a link', async () => {
    const loaded = readImage(imageOf(example('cidr.nacl')));
    if (!loaded.ok) throw new Error(loaded.message);
    const boot = (mac?: Uint8Array) =>
      bootImage(loaded.image, { nics: new Map([['0', { driver: 'memory', name: 'mac-test' }]]), logFormat: 'text', write: () => {}, label: 'm', ...(mac ? { macs: new Map([['0', mac]]) } : {}) });
    const derived = await boot();
    const given = await boot(Uint8Array.of(0x02, 0, 0x5e, 0x10, 0, 1));
    expect([...given.nics.get('0')!.mac]).toEqual([0x02, 0, 0x5e, 0x10, 0, 1]);
    expect([...derived.nics.get('0')!.mac]).not.toEqual([0x02, 0, 0x5e, 0x10, 0, 1]);
    await derived.stop();
    await given.stop();
  });

  it('refuses a --mac that is malformed, multicast, or for a NIC not given', () => {
    const run = (mac: string) => nacl(['run', join(EXAMPLES_DIR, 'cidr.nacl'), '--nic', '0=memory:m', '--mac', mac]);
    expect(run('0=02:00:5e:10:00')).toMatchObject({ status: 2, stderr: expect.stringContaining('expected N=MAC') });
    expect(run('0=01:00:5e:10:00:01')).toMatchObject({ status: 2, stderr: expect.stringContaining('multicast') });
    expect(run('1=02:00:5e:10:00:01')).toMatchObject({ status: 2, stderr: expect.stringContaining('no --nic 1') });
  });

  it('says a dhcp-with-fallback Iface negotiates first, not that its fallback address is up', async () => {
    const loaded = readImage(imageOf('Iface eth0 { index: 0, config: dhcp-with-fallback, address: 10.68.0.9, netmask: 255.255.255.0 }\n'));
    if (!loaded.ok) throw new Error(loaded.message);
    const lines: string[] = [];
    const running = await bootImage(loaded.image, { nics: new Map([['0', { driver: 'memory', name: 'fallback' }]]), logFormat: 'text', write: (l) => lines.push(l), label: 'f' });
    await running.stop();
    expect(lines[0]).toContain('eth0 dhcp (fallback 10.68.0.9/24)');
  });
});

describe('nacl build, inspect and boot on the command line', () => {
  it('builds an image and prints a summary with size and hash', () => {
    const image = join(dir, 'fw.nimg');
    const r = nacl(['build', join(EXAMPLES_DIR, 'gateway_with_forward_chain.nacl'), '-o', image]);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/image .*fw\.nimg: [\d.]+ KiB, sha256 [0-9a-f]{64}/);
    expect(r.stdout).toContain('functions: 3 attached');
    const inspect = JSON.parse(nacl(['inspect', '--format', 'json', image]).stdout);
    expect(inspect.manifest.compilerVersion).toBe('0.1.0');
  });

  it('prints the generated code with --emit js', () => {
    const r = nacl(['build', join(EXAMPLES_DIR, 'cidr.nacl'), '--emit', 'js']);
    expect(r.stdout).toContain('(function (rt, T) {');
    expect(r.stdout).toContain('"my_filter": fn0');
  });

  it('boots, prints one JSON ready line, and stops cleanly on SIGTERM', async () => {
    const image = join(dir, 'gw.nimg');
    writeFileSync(image, imageOf(example('gateway_with_send_time_exceeded.nacl')));
    const child = spawn(process.execPath, [join(ROOT, 'dist', 'nacl.js'), 'boot', image, '--nic', '0=memory:a', '--nic', '1=memory:b', '--log-format', 'json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    for (let i = 0; i < 100 && !out.includes('"ready"'); i++) await new Promise((r) => setTimeout(r, 50));
    const ready = JSON.parse(out.split('\n')[0]!);
    expect(ready).toMatchObject({ event: 'ready', nics: { '0': { driver: 'memory' } } });
    child.kill('SIGTERM');
    const code = await new Promise((r) => child.on('exit', r));
    expect(code).toBe(0);
    expect(out).toContain('"event":"stopped"');
  });
});
