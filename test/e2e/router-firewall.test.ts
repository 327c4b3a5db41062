import { spawn } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { describeRealNetwork } from '../helpers/netns.ts';
import { shOutput, Topology, waitFor, type Host } from './topology.ts';

/*
 * The appliance between real Linux hosts (network namespaces, TAP devices):
 * a router with a stateful forward policy and an input filter.
 */

const CONFIG = `
Iface a_side { index: 0, address: 10.77.1.1, netmask: 255.255.255.0, input: guard }
Iface b_side { index: 1, address: 10.77.2.1, netmask: 255.255.255.0 }
Gateway gw {
  forward: policy,
  a_net: { net: 10.77.1.0, netmask: 255.255.255.0, iface: a_side },
  b_net: { net: 10.77.2.0, netmask: 255.255.255.0, iface: b_side }
}
Filter::IP guard {
  Filter::ICMP { if (icmp.type == echo-request) { accept } }
  drop
}
Filter::IP policy {
  if (ct.state in [established, related]) { accept }
  Filter::ICMP { if (icmp.type == echo-request) { accept } }
  Filter::TCP { if (tcp.dport == 8000) { accept } }
  Filter::UDP { if (udp.dport in 33434-33534) { accept } }
  drop
}
`;

describeRealNetwork('router and firewall between Linux hosts', () => {
  const topo = new Topology();
  let a: Host;
  let b: Host;

  beforeAll(async () => {
    const [tapA, tapB] = await topo.boot(CONFIG, 2);
    a = topo.attach(tapA!, { nic: 0, address: '10.77.1.5/24', gateway: '10.77.1.1' });
    b = topo.attach(tapB!, { nic: 1, address: '10.77.2.5/24', gateway: '10.77.2.1' });
  }, 30_000);

  afterAll(async () => {
    await topo.teardown();
  });

  it('answers ARP and ping on its own address', () => {
    const out = a.ns.exec('ping', ['-c', '2', '-W', '2', '10.77.1.1']);
    expect(out).toMatch(/2 received/);
    expect(a.ns.ip('neigh', 'show', '10.77.1.1')).toMatch(/lladdr [0-9a-f:]{17}/);
  });

  it('drops what its input filter does not allow (TCP to the appliance)', () => {
    const r = shOutput(a, 'nc -z -w 2 10.77.1.1 22; echo rc=$?');
    expect(r).toContain('rc=1');
  });

  it('routes between the subnets and decrements the TTL (the reply arrives with 63)', () => {
    const out = a.ns.exec('ping', ['-c', '1', '-W', '2', '10.77.2.5']);
    expect(out).toMatch(/ttl=63/);
  });

  it('passes a fragmented ping the policy allows, both ways: fragments are reassembled before conntrack', () => {
    // 3000 bytes: three fragments each way on the 1500-byte links.
    const out = a.ns.exec('ping', ['-c', '2', '-W', '2', '-s', '3000', '10.77.2.5']);
    expect(out).toMatch(/2 received/);
    expect(out).toMatch(/3008 bytes from 10\.77\.2\.5/);
  });

  it('sends ICMP time exceeded for TTL 1, as ping -t 1 shows', () => {
    const out = shOutput(a, 'ping -c 1 -W 2 -t 1 10.77.2.5');
    expect(out).toMatch(/From 10\.77\.1\.1.*Time to live exceeded/i);
  });

  it('is visible to traceroute as the first hop', () => {
    const out = shOutput(a, 'traceroute -n -q 1 -w 2 -m 3 10.77.2.5');
    expect(out).toMatch(/^\s*1\s+10\.77\.1\.1\b/m);
    expect(out).toMatch(/^\s*2\s+10\.77\.2\.5\b/m);
  });

  it('lets an allowed TCP port through, with the replies (stateful): curl to a real HTTP server', async () => {
    // socketserver rather than `-m http.server`, whose startup does a reverse DNS lookup that would time out here.
    const script = "import socketserver, http.server; socketserver.TCPServer(('10.77.2.5', 8000), http.server.SimpleHTTPRequestHandler).serve_forever()";
    const server = spawn('ip', ['netns', 'exec', b.ns.name, '/usr/bin/python3', '-c', script], { stdio: ['ignore', 'ignore', 'pipe'] });
    let serverErr = '';
    server.stderr!.on('data', (d) => (serverErr += d));
    try {
      await waitFor(() => shOutput(b, 'ss -ltn').includes(':8000'), 5000, () => `${serverErr} exit=${server.exitCode} ${shOutput(b, 'ss -ltn; ip addr')}`);
      const body = a.ns.exec('curl', ['-s', '-m', '5', 'http://10.77.2.5:8000/'], 10_000);
      expect(body).toMatch(/Directory listing/);
    } finally {
      server.kill();
    }
  });

  it('drops a TCP port the forward policy does not allow', async () => {
    const listener = spawn('ip', ['netns', 'exec', b.ns.name, 'nc', '-l', '-k', '10.77.2.5', '9000'], { stdio: 'ignore' });
    try {
      await waitFor(() => shOutput(b, 'ss -ltn').includes(':9000'));
      expect(shOutput(b, 'nc -z -w 2 10.77.2.5 9000; echo rc=$?')).toContain('rc=0');
      expect(shOutput(a, 'nc -z -w 2 10.77.2.5 9000; echo rc=$?')).toContain('rc=1');
    } finally {
      listener.kill();
    }
  });

  it('counts what it dropped, by reason', async () => {
    const counters = await topo.counters();
    expect(counters['a_side.drop.forward-rule'] ?? 0).toBeGreaterThan(0);
    expect(counters['a_side.drop.input-rule'] ?? 0).toBeGreaterThan(0);
  });
});
