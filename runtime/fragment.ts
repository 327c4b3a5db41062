import { fillIpv4Checksum, ipv4FragOffset, ipv4HeaderLen, ipv4MoreFrags, ipv4TotalLen } from './wire/ipv4.ts';

/*
 * IPv4 fragmentation on egress (RFC 791 3.2): a datagram larger than the
 * egress MTU and without DF is cut into fragments whose data lengths are
 * multiples of 8, each with a copy of the header (options copied to every
 * fragment for simplicity; the copy bit is not consulted). Upstream handed
 * oversized packets to the driver as they were (4.3 FIX).
 */
export function fragmentDatagram(bytes: Uint8Array, l3: number, end: number, mtu: number, headroom: number): { bytes: Uint8Array; l3: number; end: number }[] {
  const hl = ipv4HeaderLen(bytes, l3);
  const total = Math.min(ipv4TotalLen(bytes, l3), end - l3);
  const baseOffset = ipv4FragOffset(bytes, l3);
  const lastHadMore = ipv4MoreFrags(bytes, l3);
  const step = Math.max(8, Math.floor((mtu - hl) / 8) * 8);
  const out: { bytes: Uint8Array; l3: number; end: number }[] = [];
  for (let at = hl; at < total; at += step) {
    const len = Math.min(step, total - at);
    const b = new Uint8Array(headroom + hl + len);
    b.set(bytes.subarray(l3, l3 + hl), headroom);
    b.set(bytes.subarray(l3 + at, l3 + at + len), headroom + hl);
    const o = headroom;
    const size = hl + len;
    b[o + 2] = size >>> 8;
    b[o + 3] = size & 255;
    const more = at + len < total || lastHadMore;
    const offset8 = (baseOffset + at - hl) / 8;
    b[o + 6] = (b[o + 6]! & 0x40) | (more ? 0x20 : 0) | ((offset8 >>> 8) & 0x1f);
    b[o + 7] = offset8 & 255;
    fillIpv4Checksum(b, o);
    out.push({ bytes: b, l3: o, end: o + size });
  }
  return out;
}
