import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseTestFile, runPacketTests, uncoveredRules } from '../../appliances/packet-tests.ts';
import { compileSource } from '../../compiler/compile.ts';
import { nacl } from '../helpers/cli.ts';
import { EXAMPLES_DIR } from '../helpers/examples.ts';
import { requireTool } from '../helpers/tools.ts';

const testFiles = readdirSync(EXAMPLES_DIR).filter((f) => f.endsWith('.tests.yaml')).sort();

describe('every example has packet tests that pass and reach every rule', () => {
  it('has a tests file for every example', () => {
    const configs = readdirSync(EXAMPLES_DIR).filter((f) => f.endsWith('.nacl'));
    expect(configs.filter((c) => !testFiles.includes(c.replace('.nacl', '.tests.yaml')))).toEqual([]);
  });

  for (const file of testFiles) {
    it(file, () => {
      const parsed = parseTestFile(readFileSync(join(EXAMPLES_DIR, file), 'utf8'), file);
      if (!parsed.ok) throw new Error(JSON.stringify(parsed.problems));
      const config = parsed.value.config!;
      const ir = compileSource(readFileSync(join(EXAMPLES_DIR, config), 'utf8'), config).ir!;
      const outcomes = runPacketTests(ir, parsed.value.tests);
      expect(outcomes.filter((o) => !o.passed).map((o) => `${o.test.name}: ${o.failures.join('; ')}`)).toEqual([]);
      expect(uncoveredRules(ir, outcomes)).toEqual([]);
    });
  }
});

const dir = mkdtempSync(join(tmpdir(), 'nacl-test-'));
const CONFIG = 'Iface eth0 { index: 0, address: 10.0.0.1, netmask: 255.255.255.0, input: f }\nFilter::IP f {\n  Filter::TCP { if (tcp.dport == 22) { accept } }\n  drop\n}\n';
writeFileSync(join(dir, 'fw.nacl'), CONFIG);

describe('nacl test', () => {
  it('exits 1 and names the failed expectation with its line', () => {
    writeFileSync(join(dir, 'bad.yaml'), 'config: fw.nacl\ntests:\n  - name: ssh\n    iface: eth0\n    packet: tcp 10.0.0.5:40000 -> 10.0.0.1:22\n    expect: accept\n  - name: web\n    iface: eth0\n    packet: tcp 10.0.0.5:40000 -> 10.0.0.1:80\n    expect: accept\n');
    const r = nacl(['test', join(dir, 'bad.yaml')]);
    expect(r.status).toBe(1);
    expect(r.stdout).toContain('ok    ssh');
    expect(r.stdout).toContain('FAIL  web');
    expect(r.stdout).toMatch(/bad\.yaml:7: expected accept, got drop .*rule f:4/);
    expect(r.stdout).toContain('1 passed, 1 failed');
  });

  it('reports a malformed tests file at its YAML line', () => {
    writeFileSync(join(dir, 'shape.yaml'), 'config: fw.nacl\ntests:\n  - name: x\n    iface: eth0\n    packet: tcp 10.0.0.5:1 -> 10.0.0.1:22\n    expect: maybe\n');
    const r = nacl(['test', join(dir, 'shape.yaml')]);
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/shape\.yaml:6:\d+: error: tests\.0\.expect/);
    writeFileSync(join(dir, 'spec.yaml'), 'tests:\n  - name: x\n    iface: eth0\n    packet: tcp 10.0.0.5 -> nowhere\n    expect: drop\n');
    const s = nacl(['test', join(dir, 'fw.nacl'), join(dir, 'spec.yaml')]);
    expect(s.status).toBe(1);
    expect(s.stderr).toMatch(/spec\.yaml:4:\d+: error: packet: 'nowhere' is not an IPv4 address/);
  });

  it('lists the rules no test reached with --coverage', () => {
    writeFileSync(join(dir, 'partial.yaml'), 'config: fw.nacl\ntests:\n  - name: web\n    iface: eth0\n    packet: udp 10.0.0.5:40000 -> 10.0.0.1:80\n    expect: drop\n');
    const r = nacl(['test', join(dir, 'partial.yaml'), '--coverage']);
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/fw\.nacl:3:\d+ +f: if \(tcp\.dport == 22\)/);
  });

  it('prints JSON with --format json', () => {
    const r = nacl(['test', join(dir, 'bad.yaml'), '--format', 'json']);
    const json = JSON.parse(r.stdout);
    expect(json).toMatchObject({ passed: 1, failed: 1 });
    expect(json.tests[1]).toMatchObject({ name: 'web', passed: false, verdict: 'drop', rule: 'f:4' });
  });

  it('prints JUnit XML that a real JUnit consumer reads (python3 junitparser)', () => {
    if (!requireTool('/usr/bin/python3') || spawnSync('/usr/bin/python3', ['-c', 'import junitparser']).status !== 0) {
      if (process.env['CI'] === 'true') throw new Error('python3-junitparser is required in CI');
      console.warn('\n*** SKIPPED: python3-junitparser is not installed ***\n');
      return;
    }
    const r = nacl(['test', join(dir, 'bad.yaml'), '--format', 'junit']);
    writeFileSync(join(dir, 'report.xml'), r.stdout);
    const py = spawnSync(
      '/usr/bin/python3',
      ['-c', 'import sys, junitparser\nx = junitparser.JUnitXml.fromfile(sys.argv[1])\nfor s in x:\n  for c in s:\n    print(c.name, "passed" if c.is_passed else "failed", (c.result[0].message if c.result else ""))\n', join(dir, 'report.xml')],
      { encoding: 'utf8' },
    );
    expect(py.stderr).toBe('');
    expect(py.stdout.trim().split('\n')).toEqual(['ssh passed ', expect.stringMatching(/^web failed expected accept, got drop/)]);
  });
});

describe('nacl trace', () => {
  it('shows each rule with its source line and the values compared, and the verdict', () => {
    const r = nacl(['trace', join(dir, 'fw.nacl'), '--iface', 'eth0', '--packet', 'tcp 10.0.0.5:40000 -> 10.0.0.1:80']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('eth0 input:');
    expect(r.stdout).toMatch(/fw\.nacl:3 +Filter::TCP: packet is TCP/);
    expect(r.stdout).toMatch(/fw\.nacl:3 +if \(tcp\.dport == 22\) +\[tcp\.dport=80\] -> false/);
    expect(r.stdout).toMatch(/verdict: DROP .*\(rule f:4\)/);
  });

  it('says when a packet has no conntrack entry', () => {
    const r = nacl(['trace', join(dir, 'fw.nacl'), '--iface', 'eth0', '--packet', 'tcp 10.0.0.5:40000 -> 10.0.0.1:22 ct=invalid']);
    expect(r.stdout).toContain('no conntrack entry');
  });

  it('prints JSON with --format json', () => {
    const r = nacl(['trace', join(dir, 'fw.nacl'), '--iface', 'eth0', '--packet', 'tcp 10.0.0.5:40000 -> 10.0.0.1:22', '--format', 'json']);
    const json = JSON.parse(r.stdout);
    expect(json).toMatchObject({ verdict: 'accept', delivered: true, rule: 'f:3' });
    expect(json.steps.some((s: { kind: string; fields?: Record<string, number> }) => s.kind === 'condition' && s.fields?.['tcp.dport'] === 22)).toBe(true);
  });

  it('exits 2 for a bad packet spec or an unknown Iface', () => {
    expect(nacl(['trace', join(dir, 'fw.nacl'), '--iface', 'eth0', '--packet', 'tcp 1.2.3.4']).status).toBe(2);
    expect(nacl(['trace', join(dir, 'fw.nacl'), '--iface', 'eth9', '--packet', 'icmp 1.2.3.4 -> 10.0.0.1']).status).toBe(2);
  });
});
