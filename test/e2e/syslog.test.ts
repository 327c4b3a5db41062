import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeRealNetwork } from '../helpers/netns.ts';
import { requireTool } from '../helpers/tools.ts';
import { Topology, type Host } from './topology.ts';

/*
 * syslog(...) to a collector on a real Linux host, with the facility and
 * framing chosen at boot; tshark's syslog dissector reads the PRI back.
 */

const CONFIG = `
Iface eth0 { index: 0, address: 10.81.1.1, netmask: 255.255.255.0, input: guard }
Syslog collector { address: 10.81.1.5, port: 514 }
Filter::IP guard {
  Filter::ICMP { if (icmp.type == echo-request) { syslog(NOTICE, "ping from ", ip.saddr) accept } }
  drop
}
`;

// Prints the first datagram that reaches 10.81.1.5:514, or nothing after 10 s.
const COLLECTOR = `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(('10.81.1.5', 514))
s.settimeout(10)
print('listening', flush=True)
data, peer = s.recvfrom(4096)
print(peer[0], peer[1], data.decode(), flush=True)
`;

describeRealNetwork('syslog to a collector on a Linux host', () => {
  const topo = new Topology();
  let host: Host;

  beforeAll(async () => {
    const [tap] = await topo.boot(CONFIG, 1, {}, ['--syslog-facility', 'local3', '--syslog-format', 'rfc3164']);
    host = topo.attach(tap!, { nic: 0, address: '10.81.1.5/24' });
  }, 30_000);

  afterAll(async () => {
    await topo.teardown();
  });

  it('sends an RFC 3164 message with facility local3 from an ephemeral port, which the host receives', async () => {
    const collector = spawn('ip', ['netns', 'exec', host.ns.name, '/usr/bin/python3', '-c', COLLECTOR], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    collector.stdout!.on('data', (d) => (out += d));
    for (let i = 0; i < 100 && !out.includes('listening'); i++) await new Promise((r) => setTimeout(r, 50));
    expect(host.ns.exec('ping', ['-c', '1', '-W', '2', '10.81.1.1'])).toMatch(/1 received/);
    const code = await new Promise((r) => collector.on('exit', r));
    expect(code, out).toBe(0);
    // local3 (19) * 8 + notice (5) = 157.
    const [, from, port, message] = /^listening\n(\S+) (\d+) (.*)$/m.exec(out) ?? [];
    expect(from).toBe('10.81.1.1');
    expect(Number(port)).toBeGreaterThanOrEqual(49152);
    expect(message).toMatch(/^<157>[A-Z][a-z]{2} [ \d]\d \d{2}:\d{2}:\d{2} 10\.81\.1\.1 nacl\[1\]: ping from 10\.81\.1\.5$/);
  });

  it('is read by tshark as facility local3, level notice', async () => {
    if (!requireTool('tshark')) return;
    await topo.teardown();
    const r = spawnSync('tshark', ['-r', join(topo.dir, 'nic0.pcap'), '-Y', 'syslog', '-T', 'fields', '-e', 'syslog.facility', '-e', 'syslog.level', '-e', 'syslog.msg'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout.trim().split('\n')).toEqual([expect.stringMatching(/^19\t5\t.*ping from 10\.81\.1\.5$/)]);
  });
});
