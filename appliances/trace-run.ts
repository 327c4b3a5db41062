import { generateModule } from '../compiler/codegen/emit.ts';
import type { TraceSink } from '../compiler/codegen/runtime-api.ts';
import { CT_STATE, type Ir } from '../compiler/ir.ts';
import { nicKey } from '../runtime/appliance.ts';
import { createAppliance } from '../runtime/boot.ts';
import { ManualClock } from '../runtime/clock.ts';
import type { Nic } from '../runtime/drivers/nic.ts';
import { buildDatagram, formatPacketSpec, type PacketSpec } from '../runtime/packet-spec.ts';
import type { Addresses, TraceEvent } from '../runtime/trace-events.ts';

/*
 * `nacl trace` and `nacl test`: one synthetic packet through the compiled
 * pipeline, without any NIC. The appliance is the real runtime (same hooks,
 * conntrack, NAT, router); the generated code is the trace variant, which
 * reports every condition it evaluates with the values of the fields read.
 */

export type TraceStep =
  | TraceEvent
  | { readonly kind: 'enter'; readonly name: string }
  | { readonly kind: 'condition'; readonly rule: string; readonly line: number; readonly text: string; readonly fields: Record<string, number>; readonly result: boolean }
  | { readonly kind: 'guard'; readonly rule: string; readonly line: number; readonly text: string; readonly protocol: string; readonly passed: boolean }
  | { readonly kind: 'statement'; readonly rule: string; readonly line: number; readonly text: string };

export interface TraceResult {
  readonly packet: string;
  readonly iface: string;
  readonly steps: TraceStep[];
  readonly verdict: 'accept' | 'drop';
  /** Why: the drop reason, or what happened to the accepted packet. */
  readonly reason: string;
  /** The rule that decided, as `function:line`, when a rule did. */
  readonly rule: string | null;
  readonly egress: string | null;
  readonly delivered: boolean;
  readonly original: Addresses;
  /** The packet as it left (forwarded) or reached the appliance (delivered), after NAT. */
  readonly final: Addresses;
  /** What the appliance sent in response (echo replies, ICMP errors, resets). */
  readonly responses: string[];
}

const CT_BY_NAME: Record<string, number> = CT_STATE;

/** Prepares an IR for tracing once; `run` traces one packet at a time. */
export class Tracer {
  private readonly code: string;

  constructor(private readonly ir: Ir) {
    this.code = generateModule(ir, { trace: true });
  }

  run(iface: string, spec: PacketSpec): TraceResult {
    const ir = this.ir;
    const steps: TraceStep[] = [];
    const arrival = arrivalIface(ir, iface, spec.vlan);
    if ('drop' in arrival) {
      steps.push({ kind: 'drop', iface, reason: arrival.drop, rule: null });
      return summarize(ir, iface, spec, steps);
    }
    const clock = new ManualClock();
    const nics = new Map<string, Nic>();
    for (const n of ir.nics) {
      const key = n.index !== null ? String(n.index) : n.mac!;
      nics.set(key, nullNic(n.index ?? 0));
    }
    let rules: readonly string[] = [];
    const where = (k: number) => {
      const id = rules[k] ?? '?';
      const src = ir.rules[id];
      return { rule: id, line: src?.line ?? 0, text: src?.text ?? '' };
    };
    const sink: TraceSink = {
      enter: (name) => steps.push({ kind: 'enter', name }),
      condition: (k, fields, result) => {
        steps.push({ kind: 'condition', ...where(k), fields: { ...fields }, result });
        return result;
      },
      guard: (k, protocol, passed) => {
        steps.push({ kind: 'guard', ...where(k), protocol, passed });
        return passed;
      },
      statement: (k) => steps.push({ kind: 'statement', ...where(k) }),
    };
    const logs: string[] = [];
    const appliance = createAppliance(ir, this.code, { nics, clock, log: (l) => logs.push(l), random: () => 0.5 }, { tracer: (e) => steps.push(e) }, sink);
    rules = appliance.ruleIds;
    appliance.start();
    steps.length = 0;
    appliance.inject(arrival.name, buildDatagram(spec), spec.ct === undefined ? undefined : CT_BY_NAME[spec.ct]);
    appliance.stop();
    return summarize(ir, arrival.name, spec, steps);
  }
}

/**
 * The Iface a packet reaches when it comes in on the NIC of `iface` with
 * the SPEC's `vlan=` tag: the NIC demultiplexes by tag (runtime-semantics
 * 5), so the tag, not the name given, picks the Iface. No tag: `iface`.
 */
function arrivalIface(ir: Ir, iface: string, vlan: number | null): { name: string } | { drop: string } {
  const at = ir.ifaces.find((i) => i.name === iface);
  if (vlan === null || !at) return { name: iface };
  const nic = nicKey(at.nic);
  const tagged = ir.ifaces.find((i) => nicKey(i.nic) === nic && i.vlan === vlan);
  if (tagged) return { name: tagged.name };
  return { drop: `no Iface for VLAN ${vlan} on NIC ${nic} (of ${iface}): the frame is dropped and counted as unknown-vlan` };
}

function nullNic(index: number): Nic {
  return {
    mac: Uint8Array.of(0x02, 0x4e, 0x41, 0x43, 0x4c, index & 255),
    mtu: 1500,
    send() {},
    onReceive() {},
    close() {},
    counters: {},
  };
}

function summarize(ir: Ir, iface: string, spec: PacketSpec, steps: TraceStep[]): TraceResult {
  const first = steps.find((s): s is TraceStep & { kind: 'receive' } => s.kind === 'receive');
  const original = first?.packet ?? { src: '', sport: 0, dst: '', dport: 0 };
  let final = original;
  let verdict: 'accept' | 'drop' = 'accept';
  let reason = '';
  let rule: string | null = null;
  let egress: string | null = null;
  let delivered = false;
  let done = false;
  const responses: string[] = [];
  for (const s of steps) {
    if (done) {
      if (s.kind === 'transmit') responses.push(`${s.packet.src} -> ${s.packet.dst} out ${s.iface}`);
      continue;
    }
    switch (s.kind) {
      case 'builtin':
        final = s.after;
        break;
      case 'function':
        if (s.rule) rule = ruleWhere(ir, s.rule);
        break;
      case 'route':
        egress = s.egress;
        break;
      case 'drop':
        verdict = 'drop';
        reason = s.reason;
        if (s.rule) rule = ruleWhere(ir, s.rule);
        done = true;
        break;
      case 'deliver':
        delivered = true;
        reason = `delivered to the appliance on ${s.iface}: ${s.what}`;
        done = true;
        break;
      case 'transmit':
        final = s.packet;
        reason = `forwarded out ${s.iface} to next hop ${s.nexthop}`;
        done = true;
        break;
      default:
        break;
    }
  }
  if (!done) reason = 'accepted by every chain; queued for ARP resolution of the next hop';
  return { packet: formatPacketSpec(spec), iface, steps, verdict, reason, rule, egress, delivered, original, final, responses };
}

function ruleWhere(ir: Ir, id: string): string {
  const src = ir.rules[id];
  return src ? `${src.function}:${src.line}` : id;
}
