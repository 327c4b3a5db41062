// Hand-built Ethernet frames for driver tests against a real kernel. They do
// not use runtime/wire on purpose: a driver test must not depend on the code
// the driver will later carry.

export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const BROADCAST = new Uint8Array([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);

export function ipv4(text: string): Uint8Array {
  return Uint8Array.from(text.split('.').map(Number));
}

export function ethernet(dst: Uint8Array, src: Uint8Array, type: number, payload: Uint8Array): Uint8Array {
  const f = new Uint8Array(14 + payload.length);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = type >> 8;
  f[13] = type & 0xff;
  f.set(payload, 14);
  return f;
}

/** RFC 826 request: who has `targetIp`? Tell `senderIp` at `senderMac`. */
export function arpRequest(senderMac: Uint8Array, senderIp: Uint8Array, targetIp: Uint8Array): Uint8Array {
  const a = new Uint8Array(28);
  a.set([0, 1, 0x08, 0x00, 6, 4, 0, 1]); // Ethernet, IPv4, request
  a.set(senderMac, 8);
  a.set(senderIp, 14);
  a.set(targetIp, 24);
  return ethernet(BROADCAST, senderMac, ETHERTYPE_ARP, a);
}

/** RFC 826 reply: `senderIp` is at `senderMac`. */
export function arpReply(senderMac: Uint8Array, senderIp: Uint8Array, targetMac: Uint8Array, targetIp: Uint8Array): Uint8Array {
  const a = new Uint8Array(28);
  a.set([0, 1, 0x08, 0x00, 6, 4, 0, 2]);
  a.set(senderMac, 8);
  a.set(senderIp, 14);
  a.set(targetMac, 18);
  a.set(targetIp, 24);
  return ethernet(targetMac, senderMac, ETHERTYPE_ARP, a);
}

export interface Arp {
  dst: Uint8Array;
  src: Uint8Array;
  op: number;
  senderMac: Uint8Array;
  senderIp: string;
  targetMac: Uint8Array;
  targetIp: string;
}

export function readArp(f: Uint8Array): Arp | undefined {
  if (f.length < 42 || type(f) !== ETHERTYPE_ARP) return undefined;
  return {
    dst: f.slice(0, 6),
    src: f.slice(6, 12),
    op: (f[20]! << 8) | f[21]!,
    senderMac: f.slice(22, 28),
    senderIp: f.slice(28, 32).join('.'),
    targetMac: f.slice(32, 38),
    targetIp: f.slice(38, 42).join('.'),
  };
}

/** RFC 1071 Internet checksum. */
function checksum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) sum += (bytes[i]! << 8) | (bytes[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function ipv4Packet(src: Uint8Array, dst: Uint8Array, protocol: number, payload: Uint8Array): Uint8Array {
  const p = new Uint8Array(20 + payload.length);
  p.set([0x45, 0, p.length >> 8, p.length & 0xff, 0, 1, 0x40, 0, 64, protocol]); // DF, TTL 64
  p.set(src, 12);
  p.set(dst, 16);
  const sum = checksum(p.subarray(0, 20));
  p[10] = sum >> 8;
  p[11] = sum & 0xff;
  p.set(payload, 20);
  return p;
}

/** An ICMP echo request (RFC 792) in IPv4 in Ethernet. */
export function icmpEchoRequest(
  srcMac: Uint8Array,
  dstMac: Uint8Array,
  src: Uint8Array,
  dst: Uint8Array,
  id: number,
  seq: number,
  data: Uint8Array,
): Uint8Array {
  const icmp = new Uint8Array(8 + data.length);
  icmp.set([8, 0, 0, 0, id >> 8, id & 0xff, seq >> 8, seq & 0xff]);
  icmp.set(data, 8);
  const sum = checksum(icmp);
  icmp[2] = sum >> 8;
  icmp[3] = sum & 0xff;
  return ethernet(dstMac, srcMac, ETHERTYPE_IPV4, ipv4Packet(src, dst, 1, icmp));
}

export interface Ipv4 {
  dst: Uint8Array;
  src: Uint8Array;
  protocol: number;
  srcIp: string;
  dstIp: string;
  /** The IP payload (ICMP message, UDP datagram). */
  payload: Uint8Array;
}

export function readIpv4(f: Uint8Array): Ipv4 | undefined {
  if (f.length < 34 || type(f) !== ETHERTYPE_IPV4) return undefined;
  const ihl = (f[14]! & 0x0f) * 4;
  const total = (f[16]! << 8) | f[17]!;
  return {
    dst: f.slice(0, 6),
    src: f.slice(6, 12),
    protocol: f[23]!,
    srcIp: f.slice(26, 30).join('.'),
    dstIp: f.slice(30, 34).join('.'),
    payload: f.slice(14 + ihl, 14 + total),
  };
}

function type(f: Uint8Array): number {
  return (f[12]! << 8) | f[13]!;
}
