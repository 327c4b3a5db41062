import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runDemo } from '../../appliances/demo.ts';
import { compileSource } from '../../compiler/compile.ts';
import { nacl } from '../helpers/cli.ts';
import { EXAMPLES_DIR } from '../helpers/examples.ts';

describe('npm run demo', () => {
  const ir = compileSource(readFileSync(join(EXAMPLES_DIR, 'demo.nacl'), 'utf8'), 'demo.nacl').ir!;
  const { rows, logs } = runDemo(ir);
  const row = (prefix: string) => rows.find((r) => r.what.startsWith(prefix))!;

  it('answers a ping from the internet', () => {
    expect(row('internet pings').arrived).toContain('internet got ICMP 198.51.100.10 -> 198.51.100.7 echo reply');
  });

  it('forwards public port 8080 to the web server port 80', () => {
    expect(row('internet TCP SYN to 198.51.100.10:8080').did).toContain('dnat dst 198.51.100.10:8080 => 10.2.0.80:80');
    expect(row('internet TCP SYN to 198.51.100.10:8080').arrived).toContain('web got TCP 198.51.100.7:41000 -> 10.2.0.80:80');
  });

  it('drops ssh to the appliance at the rule that says so', () => {
    expect(row('internet TCP SYN to 198.51.100.10:22').did).toContain('wan_guard: DROP at line 51');
    expect(row('internet TCP SYN to 198.51.100.10:22').arrived).toBe('nothing arrived');
  });

  it('masquerades the office and translates the reply back', () => {
    expect(row('alice UDP').arrived).toMatch(/internet got UDP 198\.51\.100\.10:\d+ -> 198\.51\.100\.7:53/);
    expect(row('internet replies').arrived).toContain('alice got UDP 198.51.100.7:53 -> 10.1.0.10:33000');
  });

  it('keeps the dmz out of the office and logs it', () => {
    expect(row('web UDP').arrived).toBe('nothing arrived');
    expect(logs).toContain('forward drop 10.2.0.80 -> 10.1.0.10');
  });

  it('answers an expiring TTL with time exceeded', () => {
    expect(row('alice pings 198.51.100.7 with TTL 1').arrived).toContain('alice got ICMP 10.1.0.1 -> 10.1.0.10 time exceeded');
  });

  it('runs from the command line with no root and no network', () => {
    const r = nacl(['demo']);
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('NaCl demo: examples/demo.nacl booted on a simulated network');
  });
});
