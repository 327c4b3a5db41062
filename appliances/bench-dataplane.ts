import { generateModule } from '../compiler/codegen/emit.ts';
import type { Ir } from '../compiler/ir.ts';
import { nicKey, type ApplianceEnv } from '../runtime/appliance.ts';
import { createAppliance } from '../runtime/boot.ts';
import type { Nic } from '../runtime/drivers/nic.ts';
import { buildDatagram, type PacketSpec } from '../runtime/packet-spec.ts';
import { instantiateImage } from '../runtime/tender.ts';
import { ArpRepr } from '../runtime/wire/arp.ts';
import type { BenchResult } from './bench.ts';

/*
 * `nacl bench --mode dataplane`: 64-byte frames through the whole runtime
 * path (Ethernet, IPv4 checks, conntrack, prerouting/forward/postrouting
 * chains, routing, NAT, emit) of the appliance, in this process, on NICs
 * that hand the appliance prepared batches and count what comes out.
 */

const BATCH = 64;

/** A NIC driven by the benchmark: `deliver` feeds the appliance, `sent` counts its output. */
class BenchNic implements Nic {
  readonly mtu = 1500;
  readonly counters: Record<string, number> = { tx_frames: 0 };
  handler: ((frames: readonly Uint8Array[]) => void) | null = null;
  last: Uint8Array | null = null;
  constructor(readonly mac: Uint8Array) {}
  send(frames: readonly Uint8Array[]): void {
    this.counters['tx_frames']! += frames.length;
    if (frames.length) this.last = frames[frames.length - 1]!;
  }
  onReceive(handler: (frames: readonly Uint8Array[]) => void): void {
    this.handler = handler;
  }
  close(): void {}
}

function frameOf(datagram: Uint8Array, dst: Uint8Array, src: Uint8Array): Uint8Array {
  const f = new Uint8Array(Math.max(60, 14 + datagram.length));
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = 0x08;
  f[13] = 0x00;
  f.set(datagram, 14);
  return f;
}

/**
 * `runtime` is the image runtime bundle: given, the appliance runs as
 * `nacl boot` runs it (in a vm context, from the bundle); omitted, this
 * process's own runtime modules run it, which isolates the vm's cost.
 */
export async function benchDataplane(ir: Ir, iface: string, specs: readonly PacketSpec[], seconds: number, flows: number, runtime?: string): Promise<BenchResult> {
  const nics = new Map<string, BenchNic>();
  ir.nics.forEach((n, i) => nics.set(n.index !== null ? String(n.index) : n.mac!, new BenchNic(Uint8Array.of(0x02, 0xbe, 0x4c, 0, 0, i))));
  const env: ApplianceEnv = { nics, clock: { now: () => performance.now(), setTimer: () => 0, clearTimer: () => {}, wallTime: () => Date.now() }, log: () => {}, random: Math.random };
  const code = generateModule(ir);
  let appliance: { stop(): void };
  if (runtime !== undefined) {
    appliance = instantiateImage({ runtime, code, ir }, env, 'bench');
  } else {
    const inProcess = createAppliance(ir, code, env);
    inProcess.start();
    appliance = inProcess;
  }
  const ingressIr = ir.ifaces.find((i) => i.name === iface)!;
  const ingress = nics.get(nicKey(ingressIr.nic))!;
  const peer = Uint8Array.of(0x02, 0x99, 0, 0, 0, 1);

  // Spread over `flows` flows by varying the source port (TCP/UDP) or the ICMP identifier.
  const templates: Uint8Array[] = [];
  const count = Math.max(specs.length, flows);
  for (let i = 0; i < count; i++) {
    const spec = specs[i % specs.length]!;
    const varied = flows > 1 ? { ...spec, sport: spec.protocol === 1 ? spec.sport : 1024 + (i % 60000), id: i & 0xffff } : spec;
    templates.push(frameOf(buildDatagram({ ...varied, len: Math.max(spec.len, 46) }), ingress.mac, peer));
  }

  // Resolve every next hop first: answer the appliance's ARP requests as the hosts would.
  for (let round = 0; round < 4; round++) {
    ingress.handler!(templates.slice(0, Math.min(templates.length, 256)).map((t) => t.slice()));
    for (const [, nic] of nics) {
      const f = nic.last;
      if (!f || f[12] !== 0x08 || f[13] !== 0x06) continue;
      const req = ArpRepr.parse(f, 14);
      if (typeof req === 'string' || req.operation !== 'request') continue;
      const reply = new Uint8Array(60);
      reply.set(f.subarray(6, 12), 0);
      reply.set(peer, 6);
      reply[12] = 0x08;
      reply[13] = 0x06;
      ArpRepr.emit({ operation: 'reply', senderMac: peer, senderIp: req.targetIp, targetMac: f.subarray(6, 12), targetIp: req.senderIp }, reply, 14);
      nic.handler!([reply]);
      nic.last = null;
    }
  }

  // Batches of buffers refilled from the templates each time (a NIC's DMA), so rewrites never accumulate.
  const buffers = Array.from({ length: BATCH }, () => new Uint8Array(templates[0]!.length + 64));
  // Views are made once when every template has one length, so the loop allocates nothing itself.
  const sameLength = templates.every((t) => t.length === templates[0]!.length);
  const fixedViews = buffers.map((b) => b.subarray(0, templates[0]!.length));
  const views: Uint8Array[] = [...fixedViews];
  const sentBefore = [...nics.values()].reduce((n, x) => n + x.counters['tx_frames']!, 0);
  const limit = seconds * 1e9;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  let packets = 0;
  let next = 0;
  while (elapsed < limit) {
    for (let round = 0; round < 64; round++) {
      for (let b = 0; b < BATCH; b++) {
        const t = templates[next]!;
        next = next + 1 === templates.length ? 0 : next + 1;
        const buf = buffers[b]!;
        buf.set(t);
        views[b] = sameLength ? fixedViews[b]! : buf.subarray(0, t.length);
      }
      ingress.handler!(views);
      packets += BATCH;
    }
    elapsed = Number(process.hrtime.bigint() - start);
  }
  const sent = [...nics.values()].reduce((n, x) => n + x.counters['tx_frames']!, 0) - sentBefore;
  appliance.stop();
  const secondsTaken = elapsed / 1e9;
  return {
    mode: 'dataplane',
    engine: runtime !== undefined ? 'image' : 'compiled',
    packets,
    seconds: secondsTaken,
    packetsPerSecond: packets / secondsTaken,
    nsPerPacket: elapsed / packets,
    distinctPackets: templates.length,
    verdicts: { accept: sent, drop: Math.max(0, packets - sent) },
  };
}
