import { spawn } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeRealNetwork } from '../helpers/netns.ts';
import { requireTool } from '../helpers/tools.ts';
import { Topology, waitFor, type Host } from './topology.ts';

/*
 * Route selection between real Linux hosts: the most specific prefix wins;
 * among equal prefixes the lowest cost wins (project decision). Which host
 * a packet reaches is seen with tshark on that host's own interface.
 */

const CONFIG = `
Iface a_side { index: 0, address: 10.66.1.1, netmask: 255.255.255.0 }
Iface b_side { index: 1, address: 10.66.2.1, netmask: 255.255.255.0 }
Iface c_side { index: 2, address: 10.66.3.1, netmask: 255.255.255.0 }
Gateway gw {
  a_net: { net: 10.66.1.0, netmask: 255.255.255.0, iface: a_side },
  wide: { net: 10.66.0.0, netmask: 255.255.0.0, iface: c_side, nexthop: 10.66.3.5 },
  b_net: { net: 10.66.2.0, netmask: 255.255.255.0, iface: b_side },
  c_net: { net: 10.66.3.0, netmask: 255.255.255.0, iface: c_side },
  far_expensive: { net: 10.66.9.0, netmask: 255.255.255.0, iface: b_side, nexthop: 10.66.2.5, cost: 5 },
  far_cheap: { net: 10.66.9.0, netmask: 255.255.255.0, iface: c_side, nexthop: 10.66.3.5, cost: 1 }
}
`;

describeRealNetwork('route selection with Linux hosts', () => {
  const topo = new Topology();
  let a: Host;
  let b: Host;
  let c: Host;

  beforeAll(async () => {
    const [t0, t1, t2] = await topo.boot(CONFIG, 3);
    a = topo.attach(t0!, { nic: 0, address: '10.66.1.5/24', gateway: '10.66.1.1' });
    b = topo.attach(t1!, { nic: 1, address: '10.66.2.5/24', gateway: '10.66.2.1' });
    c = topo.attach(t2!, { nic: 2, address: '10.66.3.5/24', gateway: '10.66.3.1' });
  }, 30_000);

  afterAll(async () => {
    await topo.teardown();
  });

  /**
   * Starts a capture on a host's interface; `ready` resolves once tshark
   * says it is capturing (a loaded machine takes seconds to start it), and
   * `seen` with the destination addresses it saw in 3 s.
   */
  function capture(h: Host, filter: string): { ready: Promise<void>; seen: Promise<string[]> } {
    const tshark = spawn('ip', ['netns', 'exec', h.ns.name, 'tshark', '-i', h.tap, '-f', filter, '-a', 'duration:3', '-T', 'fields', '-e', 'ip.dst'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    tshark.stdout.on('data', (d) => (out += d));
    tshark.stderr.on('data', (d) => (err += d));
    const exited = new Promise((r) => tshark.on('exit', r));
    return {
      // A little past the message too: dumpcap may say it before its filter is on the socket.
      ready: waitFor(() => err.includes('Capturing on') || tshark.exitCode !== null, 15_000, () => `for tshark on ${h.tap}: ${err}`).then(() => new Promise((r) => setTimeout(r, 300))),
      seen: exited.then(() => out.trim().split('\n').filter(Boolean)),
    };
  }

  /** Captures on a host's interface while `send` runs; returns the destination addresses seen. */
  async function seenOn(h: Host, filter: string, send: () => void): Promise<string[]> {
    const c = capture(h, filter);
    await c.ready;
    send();
    return c.seen;
  }

  it('sends a destination covered by a /16 and a /24 along the /24', () => {
    expect(a.ns.exec('ping', ['-c', '1', '-W', '2', '10.66.2.5'])).toMatch(/1 received/);
  });

  it('sends a destination only the /16 covers to that route\'s next hop', async () => {
    if (!requireTool('tshark')) return;
    const seen = await seenOn(c, 'icmp and host 10.66.7.7', () => a.ns.sh('ping -c 1 -W 1 10.66.7.7 || true'));
    expect(seen).toContain('10.66.7.7');
  });

  it('among equal prefixes takes the route with the lowest cost', async () => {
    if (!requireTool('tshark')) return;
    // Both capture before the ping, so that nothing seen on b means nothing went there.
    const [onC, onB] = [capture(c, 'icmp and host 10.66.9.9'), capture(b, 'icmp and host 10.66.9.9')];
    await Promise.all([onC.ready, onB.ready]);
    a.ns.sh('ping -c 1 -W 1 10.66.9.9 || true');
    const [atC, atB] = await Promise.all([onC.seen, onB.seen]);
    expect(atC).toContain('10.66.9.9');
    expect(atB).toEqual([]);
  });
});
