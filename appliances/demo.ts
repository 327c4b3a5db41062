import { generateModule } from '../compiler/codegen/emit.ts';
import type { Ir } from '../compiler/ir.ts';
import { createAppliance } from '../runtime/boot.ts';
import { ManualClock } from '../runtime/clock.ts';
import { attach, MemoryNetwork, type MemoryNic } from '../runtime/drivers/memory.ts';
import { SimHost, type Received } from '../runtime/sim-host.ts';
import type { TraceEvent } from '../runtime/trace-events.ts';

/*
 * `npm run demo`: the demo appliance (examples/demo.nacl) booted on an
 * in-process network with simulated hosts on its three segments. Real
 * frames cross memory NICs and a learning switch per segment; the table shows
 * what each host sent, what the appliance did (verdict, deciding rule,
 * translation), and what arrived where.
 */

interface Row {
  readonly what: string;
  readonly did: string;
  readonly arrived: string;
}

export interface DemoResult {
  readonly rows: Row[];
  readonly logs: string[];
  readonly statistics: Record<string, number>;
}

export function runDemo(ir: Ir): DemoResult {
  const clock = new ManualClock();
  const net = new MemoryNetwork({ clock: () => clock.now() });
  const nics = new Map<string, MemoryNic>();
  ['wan', 'lan', 'dmz'].forEach((segment, i) => {
    const nic = net.createNic({ name: `appliance.${segment}`, mac: Uint8Array.of(0x02, 0x4e, 0x41, 0x43, 0x4c, i) });
    attach(nic, net.switch(segment));
    nics.set(String(i), nic);
  });
  const events: TraceEvent[] = [];
  const logs: string[] = [];
  const appliance = createAppliance(ir, generateModule(ir), { nics, clock, log: (l) => logs.push(l), random: () => 0.42 }, { tracer: (e) => events.push(e) });
  appliance.start();
  const settle = () => {
    net.flush();
    clock.advance(50, () => net.flush());
  };
  const host = (name: string, segment: string, address: string, gateway: string, last: number) => {
    const nic = net.createNic({ name, mac: Uint8Array.of(0x02, 0, 0, 0, segment.length, last) });
    attach(nic, net.switch(segment));
    return new SimHost({ name, address, prefix: 24, gateway, nic, clock });
  };
  const internet = host('internet', 'wan', '198.51.100.7', '198.51.100.1', 1);
  const upstream = host('upstream-router', 'wan', '198.51.100.1', '198.51.100.1', 2);
  const alice = host('alice', 'lan', '10.1.0.10', '10.1.0.1', 3);
  const web = host('web', 'dmz', '10.2.0.80', '10.2.0.1', 4);
  const hosts = [internet, upstream, alice, web];
  settle();

  const rows: Row[] = [];
  const step = (what: string, act: () => void) => {
    for (const h of hosts) h.clear();
    events.length = 0;
    act();
    settle();
    rows.push({ what, did: describeEvents(events, ir), arrived: describeArrivals(hosts) });
  };

  step('internet pings the appliance (198.51.100.10)', () => internet.ping('198.51.100.10'));
  step('internet TCP SYN to 198.51.100.10:8080 (port forward)', () => internet.syn('198.51.100.10', 8080, 41000));
  step('internet TCP SYN to 198.51.100.10:22 (ssh)', () => internet.syn('198.51.100.10', 22, 41001));
  step('alice UDP 10.1.0.10:33000 -> 198.51.100.7:53', () => alice.udp('198.51.100.7', 53, 'query', 33000));
  const masqueraded = internet.received.find((r) => r.protocol === 17);
  if (masqueraded) step(`internet replies to ${masqueraded.src}:${masqueraded.sport}`, () => internet.udp(masqueraded.src, masqueraded.sport, 'answer', 53));
  step('web UDP 10.2.0.80 -> 10.1.0.10:53 (dmz into office)', () => web.udp('10.1.0.10', 53, 'sneaky', 5000));
  step('alice pings 198.51.100.7 with TTL 1', () => alice.ping('198.51.100.7', { ttl: 1 }));
  step('alice pings the web server 10.2.0.80', () => alice.ping('10.2.0.80'));
  appliance.stop();
  return { rows, logs, statistics: appliance.statistics() };
}

function describeEvents(events: readonly TraceEvent[], ir: Ir): string {
  const parts: string[] = [];
  let hops = 0;
  for (const e of events) {
    switch (e.kind) {
      case 'receive':
        hops++;
        if (hops > 1) parts.push('|');
        parts.push(`in ${e.iface} (ct ${e.ctState})`);
        break;
      case 'function':
        if (e.verdict === 'drop' || e.rule) parts.push(`${e.name}: ${e.verdict.toUpperCase()}${e.rule ? ` at line ${ir.rules[e.rule]?.line ?? '?'}` : ''}`);
        break;
      case 'builtin':
        if (e.before.src !== e.after.src || e.before.sport !== e.after.sport) parts.push(`${e.step || 'snat'} src ${e.before.src}:${e.before.sport} => ${e.after.src}:${e.after.sport}`);
        if (e.before.dst !== e.after.dst || e.before.dport !== e.after.dport) parts.push(`${e.step || 'dnat'} dst ${e.before.dst}:${e.before.dport} => ${e.after.dst}:${e.after.dport}`);
        break;
      case 'route':
        parts.push(e.egress ? `route -> ${e.egress}` : 'no route');
        break;
      case 'drop':
        parts.push(`DROP: ${e.reason}`);
        break;
      case 'deliver':
        parts.push(`deliver: ${e.what}`);
        break;
      case 'icmp':
        parts.push(e.what);
        break;
      default:
        break;
    }
  }
  return parts.join('; ');
}

function describeArrivals(hosts: readonly SimHost[]): string {
  const out: string[] = [];
  for (const h of hosts) for (const r of h.received) out.push(`${h.name} got ${describePacket(r)}`);
  return out.length ? out.join('; ') : 'nothing arrived';
}

function describePacket(r: Received): string {
  const proto = r.protocol === 1 ? 'ICMP' : r.protocol === 6 ? 'TCP' : r.protocol === 17 ? 'UDP' : `proto ${r.protocol}`;
  const ports = r.protocol === 6 || r.protocol === 17;
  const detail = r.protocol === 1 ? ` ${({ 0: 'echo reply', 3: 'unreachable', 8: 'echo request', 11: 'time exceeded' } as Record<number, string>)[r.detail] ?? `type ${r.detail}`}` : r.protocol === 6 ? ` flags 0x${r.detail.toString(16)}` : '';
  return `${proto} ${r.src}${ports ? ':' + r.sport : ''} -> ${r.dst}${ports ? ':' + r.dport : ''}${detail} ttl ${r.ttl}`;
}

export function renderDemo(result: DemoResult): string {
  const out: string[] = ['NaCl demo: examples/demo.nacl booted on a simulated network (wan, lan, dmz segments)', ''];
  result.rows.forEach((r, i) => {
    out.push(`${String(i + 1).padStart(2)}. ${r.what}`);
    out.push(`    appliance: ${r.did}`);
    out.push(`    arrived:   ${r.arrived}`);
    out.push('');
  });
  if (result.logs.length) out.push('appliance log:', ...result.logs.map((l) => `    ${l}`), '');
  const s = result.statistics;
  out.push(
    `counters: ${s['frames_rx']} frames in, ${s['frames_tx']} frames out, ${s['router_packets_fwd']} forwarded, ${s['conntrack.entries'] ?? 0} tracked connections, ${s['nat.masqueraded'] ?? 0} masqueraded, ${s['nat.dnat'] ?? 0} dnat`,
  );
  return out.join('\n') + '\n';
}
