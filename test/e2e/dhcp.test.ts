import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeRealNetwork } from '../helpers/netns.ts';
import { requireTool } from '../helpers/tools.ts';
import { Topology, type Host } from './topology.ts';

/*
 * `config: dhcp` against a real DHCP server: dnsmasq in a network namespace
 * on the far side of the appliance's TAP leases it an address; the host then
 * reaches the appliance there.
 */

const CONFIG = 'Iface eth0 { index: 0, config: dhcp }';

describeRealNetwork('DHCP from dnsmasq', () => {
  const topo = new Topology();
  let server: Host;
  let dnsmasq: ChildProcess | null = null;
  const dnsmasqLog: string[] = [];

  beforeAll(async () => {
    if (!requireTool('dnsmasq')) return;
    const [tap] = await topo.boot(CONFIG, 1);
    server = topo.attach(tap!, { nic: 0, address: '10.67.0.1/24' });
    dnsmasq = spawn(
      'ip',
      [
        'netns', 'exec', server.ns.name, 'dnsmasq', '--no-daemon', '--conf-file=/dev/null', '--port=0', '--user=root',
        `--interface=${server.dev}`, '--bind-interfaces', '--dhcp-range=10.67.0.50,10.67.0.60,255.255.255.0,2m',
        '--dhcp-option=option:router,10.67.0.1', '--dhcp-option=option:dns-server,10.67.0.53', '--no-ping',
        `--dhcp-leasefile=${join(topo.dir, 'leases')}`, `--pid-file=${join(topo.dir, 'dnsmasq.pid')}`, '--log-dhcp',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    dnsmasq.stderr!.on('data', (d) => dnsmasqLog.push(String(d)));
  }, 30_000);

  afterAll(async () => {
    if (dnsmasq && dnsmasq.exitCode === null) {
      const exited = new Promise((r) => dnsmasq!.once('exit', r));
      dnsmasq.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
    }
    await topo.teardown();
  });

  it('leases an address from dnsmasq, with its router and DNS server, and answers there', async () => {
    if (!dnsmasq) return;
    let line: string | undefined;
    for (let i = 0; i < 120 && !line; i++) {
      line = topo.output.find((l) => l.includes('] DHCP: '));
      if (!line) await new Promise((r) => setTimeout(r, 100));
    }
    expect(line, `appliance:\n${topo.output.join('\n')}\ndnsmasq:\n${dnsmasqLog.join('')}`).toMatch(
      /^\[ eth0 \] DHCP: 10\.67\.0\.(5\d|60)\/24, gateway 10\.67\.0\.1, dns 10\.67\.0\.53, lease 120 s from 10\.67\.0\.1$/,
    );
    const address = /DHCP: ([\d.]+)\//.exec(line!)![1]!;
    expect(server.ns.exec('ping', ['-c', '2', '-W', '2', address])).toMatch(/2 received/);
    // dnsmasq recorded the lease for the appliance's MAC.
    expect(readFileSync(join(topo.dir, 'leases'), 'utf8')).toMatch(new RegExp(` [0-9a-f:]{17} ${address.replace(/\./g, '\\.')} `));
  });
});
