import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseTestFile } from '../../appliances/packet-tests.ts';
import { compileSource } from '../../compiler/compile.ts';
import type { Ir } from '../../compiler/ir.ts';
import { parsePacketSpec, type PacketSpec } from '../../runtime/packet-spec.ts';
import { formatIpv4Address, parseIpv4Address } from '../../runtime/wire/ipv4.ts';
import { EXAMPLES_DIR } from '../helpers/examples.ts';
import { Sim } from '../helpers/sim.ts';

/*
 * The examples' `nacl test` expectations must also hold when the packets
 * really cross a simulated network: a host on the ingress segment sends the
 * packet; an accepted packet for the appliance gets its answer (echo reply,
 * port unreachable, RST), a forwarded one reaches a host at its (translated)
 * destination, a dropped one reaches nobody. Tests that cannot be replayed by
 * a host - a forced ct= state, or a source off the ingress subnet - are left
 * to `nacl test`.
 */

const onSubnet = (a: number, net: number, prefix: number) => ((a ^ net) & (prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0)) === 0;

function ifaceFor(ir: Ir, addr: number) {
  return ir.ifaces.find((i) => i.address && onSubnet(addr, parseIpv4Address(i.address)!, i.prefixLength!));
}

interface Replayable {
  readonly name: string;
  readonly spec: PacketSpec;
  readonly iface: string;
  readonly expect: { verdict: string; dnat?: string; egress?: string; delivered?: boolean };
}

const cases: { file: string; ir: Ir; tests: Replayable[] }[] = [];
for (const file of readdirSync(EXAMPLES_DIR).filter((f) => f.endsWith('.tests.yaml')).sort()) {
  const parsed = parseTestFile(readFileSync(join(EXAMPLES_DIR, file), 'utf8'), file);
  if (!parsed.ok) continue;
  const ir = compileSource(readFileSync(join(EXAMPLES_DIR, parsed.value.config!), 'utf8'), parsed.value.config!).ir!;
  const tests: Replayable[] = [];
  for (const t of parsed.value.tests) {
    const spec = parsePacketSpec(t.packet);
    if (!spec.ok || spec.spec.ct !== undefined || spec.spec.vlan !== null) continue;
    const iface = ir.ifaces.find((i) => i.name === t.iface);
    if (!iface?.address || iface.vlan !== null || !onSubnet(spec.spec.src, parseIpv4Address(iface.address)!, iface.prefixLength!)) continue;
    if (spec.spec.src === parseIpv4Address(iface.address)) continue;
    if (spec.spec.protocol === 1 && spec.spec.icmpType !== 8) continue;
    // A drop is observable only at the appliance itself or at a host behind another Iface.
    const target = t.expect.dnat ? parseIpv4Address(t.expect.dnat.split(':')[0]!)! : spec.spec.dst;
    const targetIface = ifaceFor(ir, target);
    const atAppliance = ir.ifaces.some((i) => i.address && parseIpv4Address(i.address) === target);
    if (t.expect.verdict === 'drop' && !atAppliance && (!targetIface || targetIface.vlan !== null || targetIface.name === iface.name)) continue;
    tests.push({ name: t.name, spec: spec.spec, iface: t.iface, expect: t.expect });
  }
  if (tests.length) cases.push({ file, ir, tests });
}

describe('example expectations hold on a simulated network', () => {
  it('replays a good share of the example tests', () => {
    expect(cases.reduce((n, c) => n + c.tests.length, 0)).toBeGreaterThanOrEqual(20);
  });

  for (const { file, ir, tests } of cases) {
    for (const t of tests) {
      it(`${file}: ${t.name}`, () => {
        const config = readFileSync(join(EXAMPLES_DIR, file.replace('.tests.yaml', '.nacl')), 'utf8');
        const sim = new Sim(config, ir.nics.length);
        const ingress = ir.ifaces.find((i) => i.name === t.iface)!;
        const segment = ir.nics.findIndex((n) => 'index' in ingress.nic && n.index === ingress.nic.index);
        const sender = sim.host('sender', segment, formatIpv4Address(t.spec.src), ingress.prefixLength!, ingress.address!);
        // Where a forwarded packet should arrive: its (translated) destination, on that Iface's segment.
        const target = t.expect.dnat ? parseIpv4Address(t.expect.dnat.split(':')[0]!)! : t.spec.dst;
        const targetIface = ifaceFor(ir, target);
        const isAppliance = ir.ifaces.some((i) => i.address && parseIpv4Address(i.address) === target);
        // (A destination on the sender's own subnet would be reached directly, not through the appliance.)
        const receiver =
          !isAppliance && targetIface && targetIface.vlan === null && targetIface.name !== ingress.name && target !== t.spec.src
            ? sim.host('receiver', ir.nics.findIndex((n) => 'index' in targetIface.nic && n.index === targetIface.nic.index), formatIpv4Address(target), targetIface.prefixLength!, targetIface.address!)
            : null;
        const s = t.spec;
        if (s.protocol === 1) sender.ping(formatIpv4Address(s.dst), { ttl: s.ttl });
        else if (s.protocol === 17) sender.udp(formatIpv4Address(s.dst), s.dport, 'nacl', s.sport, s.ttl);
        else if (s.protocol === 6) sender.syn(formatIpv4Address(s.dst), s.dport, s.sport);
        else return;
        sim.settle(200);
        const answered = sender.received.some((r) => r.src !== formatIpv4Address(s.src));
        const arrived = receiver ? receiver.received.some((r) => r.dst === formatIpv4Address(target)) : false;
        const stats = sim.appliance.statistics();
        // The appliance's own answer crosses its output (and, on a forwarding Iface, forward) chain too, which may drop it.
        const answerDropped = Object.keys(stats).some((k) => /\.drop\.(output|forward)-rule$/.test(k) && stats[k]! > 0);
        if (t.expect.verdict === 'drop') {
          expect(arrived, 'a dropped packet reached its destination').toBe(false);
          if (isAppliance || t.expect.delivered !== undefined) expect(answered && s.ttl > 1, 'a dropped packet was answered').toBe(false);
        } else if (t.expect.delivered) {
          expect(answered || answerDropped, 'the appliance did not answer a delivered packet').toBe(true);
        } else if (receiver) {
          expect(arrived, `nothing arrived at ${formatIpv4Address(target)}`).toBe(true);
        }
      });
    }
  }
});
