import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { nacl } from '../helpers/cli.ts';
import { EXAMPLES_DIR, ROOT } from '../helpers/examples.ts';

const example = (name: string) => join(EXAMPLES_DIR, name);

describe('every subcommand', () => {
  for (const cmd of ['check', 'fmt', 'build', 'inspect', 'graph', 'convert', 'trace', 'test', 'bench', 'boot', 'run', 'demo']) {
    it(`${cmd} --help describes it and exits 0`, () => {
      const r = nacl([cmd, '--help']);
      expect(r.status).toBe(0);
      expect(r.stdout).toContain(`Usage: nacl ${cmd}`);
    });
  }
});

describe('nacl graph and nacl convert', () => {
  it('prints DOT by default and Mermaid on request', () => {
    expect(nacl(['graph', example('vlan_routing.nacl')]).stdout).toMatch(/^digraph nacl \{/);
    expect(nacl(['graph', example('vlan_routing.nacl'), '--format', 'mermaid']).stdout).toMatch(/^flowchart LR/);
    expect(nacl(['graph', example('vlan_routing.nacl'), '--format', 'svg']).status).toBe(2);
  });

  it('converts a .nacl file to YAML that checks clean', () => {
    const r = nacl(['convert', example('lb.nacl'), '--to', 'yaml']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Iface:\n/);
    const file = join(mkdtempSync(join(tmpdir(), 'nacl-convert-')), 'lb.yaml');
    writeFileSync(file, r.stdout);
    const check = nacl(['check', file]);
    expect(check.stderr).not.toContain('error[');
    expect(check.status).toBe(0);
  });

  it('refuses to convert a config with errors, which YAML could hide (two elements of one name)', () => {
    const file = join(mkdtempSync(join(tmpdir(), 'nacl-convert-')), 'dup.nacl');
    writeFileSync(file, 'a: 1\na: 2\nFilter::IP f { if (ip.ttl == a) { drop } accept }\nIface e { index: 0, input: f }\n');
    const r = nacl(['convert', file, '--to', 'yaml']);
    expect(r.status).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('error[E202]');
  });
});

describe('nacl bench', () => {
  it('prints packets/s in JSON for the interpreter too', () => {
    const r = nacl(['bench', example('syslog.nacl'), '--iface', 'eth0', '--seconds', '0.2', '--interpreter', '--format', 'json']);
    const json = JSON.parse(r.stdout);
    expect(json).toMatchObject({ mode: 'filter', engine: 'interpreter' });
    expect(json.packetsPerSecond).toBeGreaterThan(0);
  });

  it('measures the whole data path with --mode dataplane', () => {
    const r = nacl(['bench', example('gateway_with_send_time_exceeded.nacl'), '--iface', 'eth1', '--mode', 'dataplane', '--packet', 'udp 10.10.10.7:1000 -> 10.0.0.9:53', '--seconds', '0.3', '--format', 'json']);
    const json = JSON.parse(r.stdout);
    expect(json).toMatchObject({ mode: 'dataplane', engine: 'image' });
    expect(json.verdicts.accept).toBeGreaterThan(0);
  });

  it('refuses options that do not apply to the mode, rather than ignoring them', () => {
    const dataplane = nacl(['bench', example('syslog.nacl'), '--iface', 'eth0', '--mode', 'dataplane', '--interpreter']);
    expect(dataplane.status).toBe(2);
    expect(dataplane.stderr).toContain('--interpreter applies to --mode filter only');
    const filter = nacl(['bench', example('syslog.nacl'), '--iface', 'eth0', '--flows', '4']);
    expect(filter.status).toBe(2);
    expect(filter.stderr).toContain('--flows applies to --mode dataplane only');
  });

  it('measures packets with the conntrack state their SPEC gives (ct=), in filter mode only', () => {
    const spec = 'udp 198.51.100.7:53 -> 10.1.0.10:33000';
    const run = (extra: string[]) => JSON.parse(nacl(['bench', example('demo.nacl'), '--iface', 'wan', '--seconds', '0.2', '--format', 'json', ...extra]).stdout);
    // demo.nacl's forward policy accepts an established flow and drops this one as new.
    expect(run(['--packet', `${spec} ct=established`]).verdicts).toMatchObject({ drop: 0 });
    expect(run(['--packet', spec]).verdicts).toMatchObject({ accept: 0 });
    expect(run(['--packet', `${spec} ct=established`, '--interpreter']).verdicts).toMatchObject({ drop: 0 });
    const dataplane = nacl(['bench', example('demo.nacl'), '--iface', 'wan', '--packet', `${spec} ct=established`, '--mode', 'dataplane']);
    expect(dataplane.status).toBe(2);
    expect(dataplane.stderr).toContain('ct= applies to --mode filter only');
  });

  it('exits 2 when there is no packet to measure (--random 0 and no --packet)', () => {
    for (const mode of ['filter', 'dataplane']) {
      const r = nacl(['bench', example('syslog.nacl'), '--iface', 'eth0', '--random', '0', '--mode', mode]);
      expect(r.status).toBe(2);
      expect(r.stderr).toContain('no packets to measure');
    }
  });

  it('exits 2 for an unknown Iface or a bad packet', () => {
    expect(nacl(['bench', example('syslog.nacl'), '--iface', 'nope']).status).toBe(2);
    expect(nacl(['bench', example('syslog.nacl'), '--iface', 'eth0', '--packet', 'tcp x -> y']).status).toBe(2);
  });
});

describe('files nacl cannot use', () => {
  it('check reports an unreadable file, still checks the others, and exits 2', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nacl-check-'));
    writeFileSync(join(dir, 'bad.nacl'), 'Iface e { index: 0, address: 10.0.0.1, netmask: 255.255.255.0, foo: 1 }\n');
    const r = nacl(['check', join(dir, 'missing.nacl'), join(dir, 'bad.nacl')]);
    rmSync(dir, { recursive: true, force: true });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('missing.nacl: no such file');
    expect(r.stderr).toContain('error[E501]');
  });

  it('inspect refuses a file that is not an image with exit 2, as boot does', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nacl-inspect-'));
    writeFileSync(join(dir, 'x.nimg'), 'NACL-IMAGE 1\n{"format":"NACL-IMAGE"}\n');
    const inspect = nacl(['inspect', join(dir, 'x.nimg')]);
    const boot = nacl(['boot', join(dir, 'x.nimg'), '--nic', '0=memory:x']);
    rmSync(dir, { recursive: true, force: true });
    expect(inspect.status).toBe(2);
    expect(inspect.stderr).toContain("corrupt image: the manifest (top level) must have required property 'formatVersion'");
    expect(boot.status).toBe(2);
    expect(boot.stderr).toContain('corrupt image: the manifest');
  });
});

describe('a reader that closes the pipe early', () => {
  it('ends nacl quietly, status 0, without a stack trace', async () => {
    // More output than a pipe holds, so nacl is still writing when the reader goes.
    const files = Array<string>(300).fill(join(EXAMPLES_DIR, 'lb.nacl'));
    const child = spawn(process.execPath, [join(ROOT, 'dist', 'nacl.js'), 'fmt', ...files], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    await new Promise((r) => child.stdout.once('data', r));
    child.stdout.destroy();
    const status = await new Promise((r) => child.on('exit', r));
    expect(stderr).toBe('');
    expect(status).toBe(0);
  });
});

describe('nacl run', () => {
  it('exits 2 for a syslog facility or format it does not know, naming what it takes', () => {
    const facility = nacl(['run', example('cidr.nacl'), '--nic', '0=memory:x', '--syslog-facility', 'local9']);
    expect(facility.status).toBe(2);
    expect(facility.stderr).toContain('local0');
    const format = nacl(['run', example('cidr.nacl'), '--nic', '0=memory:x', '--syslog-format', 'cef']);
    expect(format.status).toBe(2);
    expect(format.stderr).toContain('rfc3164');
  });

  it('exits 2 for an idle timeout that is not a number of seconds', () => {
    for (const value of ['soon', '-5', '1e3']) {
      const run = nacl(['run', example('lb.nacl'), '--nic', '0=memory:x', '--lb-idle-timeout', value]);
      expect(run.status).toBe(2);
      expect(run.stderr).toContain('--lb-idle-timeout');
    }
  });

  it('says the load balancer has an idle timeout when given one', async () => {
    const child = spawn(process.execPath, [join(ROOT, 'dist', 'nacl.js'), 'run', example('lb.nacl'), '--nic', '0=memory:lb-a', '--nic', '1=memory:lb-b', '--lb-idle-timeout', '300'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    for (let i = 0; i < 100 && !out.includes('ready:'); i++) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGINT');
    await new Promise((r) => child.on('exit', r));
    expect(out).toMatch(/\[ NaCl LB \] .*idle timeout 300 s/);
  });

  it('builds in memory, boots, prints ready and stops on SIGINT', async () => {
    const child = spawn(process.execPath, [join(ROOT, 'dist', 'nacl.js'), 'run', example('cidr.nacl'), '--nic', '0=memory:run-test'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    for (let i = 0; i < 100 && !out.includes('ready:'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(out).toMatch(/^ready: .*cidr\.nacl/m);
    child.kill('SIGINT');
    expect(await new Promise((r) => child.on('exit', r))).toBe(0);
  });

  it('samples the stack for a Timer that lists stack-sampling and prints what it found', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nacl-sampling-'));
    const config = join(dir, 'sampling.nacl');
    writeFileSync(config, 'Iface eth0 { index: 0, address: 10.0.0.1, netmask: 255.255.255.0 }\nTimer t { interval: 1, data: [stack-sampling] }\n');
    const child = spawn(process.execPath, [join(ROOT, 'dist', 'nacl.js'), 'run', config, '--nic', '0=memory:sampling-test'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    for (let i = 0; i < 100 && !/samples\)\n(.*\n)+/.test(out); i++) await new Promise((r) => setTimeout(r, 50));
    child.kill('SIGINT');
    await new Promise((r) => child.on('exit', r));
    rmSync(dir, { recursive: true, force: true });
    expect(out).toContain('[ NaCl Timer Stack Sampling ]\n');
    const count = /Stack sampling - (\d+) results \((\d+) samples\)/.exec(out);
    expect(Number(count?.[2])).toBeGreaterThan(0);
    // An idle appliance: most samples land in the event loop's wait.
    expect(out).toMatch(/^ *\d+\.\d\d%  \d+: \(idle\)$/m);
  });
});
