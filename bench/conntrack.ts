/*
 * `npm run bench:conntrack`: the connection tracker's memory per entry, the
 * cost of looking up an existing flow (the per-packet path) and of opening
 * new ones, and the heap growth over 4 million lookups: a few MiB at most
 * from the optimising compiler, not growing with the number of lookups (the
 * lookup path allocates nothing per packet). Run with `node --expose-gc`
 * for a steadier heap figure.
 */
import { Conntrack, DEFAULT_CONNTRACK_TIMEOUTS } from '../runtime/conntrack.ts';
import { CtInfo, type Packet } from '../runtime/packet.ts';
import { IpProtocol, Ipv4Repr } from '../runtime/wire/ipv4.ts';
import { UdpRepr } from '../runtime/wire/udp.ts';

function udpPacket(src: number, sport: number, dst: number, dport: number): Packet {
  const udp: UdpRepr = { srcPort: sport, dstPort: dport, payload: new Uint8Array(32) };
  const ip: Ipv4Repr = { src, dst, protocol: IpProtocol.Udp, ttl: 64, payloadLen: UdpRepr.bufferLen(udp) };
  const bytes = new Uint8Array(20 + UdpRepr.bufferLen(udp));
  Ipv4Repr.emit(ip, bytes, 0);
  UdpRepr.emit(udp, bytes, 20, src, dst);
  return { bytes, l3: 0, l4: 20, end: bytes.length, ctInfo: CtInfo.None };
}

function flows(n: number): Packet[] {
  const out: Packet[] = [];
  for (let i = 0; i < n; i++) out.push(udpPacket(0x0a000000 + (i >>> 12), 1024 + (i & 0xfff), 0xc0000201, 53));
  return out;
}

const gc = (globalThis as { gc?: () => void }).gc;
const rows: string[][] = [['flows', 'bytes/entry', 'lookup ns/op', 'create ns/op', 'heap growth KiB']];

for (const n of [1_000, 100_000, 1_000_000]) {
  const packets = flows(n);
  const ct = new Conntrack({ timeouts: DEFAULT_CONNTRACK_TIMEOUTS, limit: 0, reserve: n, statefulTcp: false, hashSeed: 1 });
  let start = performance.now();
  for (const p of packets) ct.track(p, 0);
  const createNs = ((performance.now() - start) * 1e6) / n;

  const rounds = Math.max(1, Math.floor(4_000_000 / n));
  for (const p of packets) ct.track(p, 1); // warm-up
  gc?.();
  const heapBefore = process.memoryUsage().heapUsed;
  start = performance.now();
  for (let r = 0; r < rounds; r++) for (const p of packets) ct.track(p, 2);
  const lookups = rounds * n;
  const lookupNs = ((performance.now() - start) * 1e6) / lookups;
  const heapKiB = (process.memoryUsage().heapUsed - heapBefore) / 1024;
  rows.push([String(n), ct.bytesPerEntry().toFixed(1), lookupNs.toFixed(0), createNs.toFixed(0), heapKiB.toFixed(0)]);
}

const widths = rows[0]!.map((_, c) => Math.max(...rows.map((row) => row[c]!.length)));
for (const row of rows) console.log(row.map((cell, c) => cell.padStart(widths[c]!)).join('  '));
