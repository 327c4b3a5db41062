import { ICMP_TYPES } from '../compiler/ir.ts';
import { fillIcmpv4Checksum } from './wire/icmpv4.ts';
import { fillIpv4Checksum, formatIpv4Address, parseIpv4Address } from './wire/ipv4.ts';
import { fillTcpChecksum } from './wire/tcp.ts';
import { fillUdpChecksum } from './wire/udp.ts';

/*
 * Packet SPECs (cli.md): `PROTO SRC[:PORT] -> DST[:PORT] [key=value ...]`,
 * e.g. `tcp 10.0.0.5:40000 -> 10.0.0.45:80 flags=S`. Used by `nacl trace`,
 * `nacl test`, `nacl bench` and the simulations; parse errors are values.
 */

export type CtSpec = 'new' | 'established' | 'related' | 'invalid';

export interface PacketSpec {
  readonly protocol: number;
  readonly protocolName: string;
  readonly src: number;
  readonly dst: number;
  readonly sport: number;
  readonly dport: number;
  readonly ttl: number;
  /** TCP flags byte. */
  readonly flags: number;
  readonly icmpType: number;
  readonly icmpCode: number;
  /** Total IP length; 0 = the smallest valid packet. */
  readonly len: number;
  readonly id: number;
  readonly vlan: number | null;
  /** What conntrack says for this packet; undefined = what it would say (a first packet is new). */
  readonly ct: CtSpec | undefined;
}

const PROTOCOLS: Record<string, number> = { tcp: 6, udp: 17, icmp: 1 };
const FLAG_BITS: Record<string, number> = { F: 0x01, S: 0x02, R: 0x04, P: 0x08, A: 0x10, U: 0x20, E: 0x40, C: 0x80 };

export type SpecResult = { ok: true; spec: PacketSpec } | { ok: false; message: string };

function fail(message: string): SpecResult {
  return { ok: false, message };
}

function endpoint(text: string, withPort: boolean): { addr: number; port: number } | string {
  const [host = '', port] = text.split(':');
  const addr = parseIpv4Address(host);
  if (addr === undefined) return `'${host}' is not an IPv4 address`;
  if (port === undefined) return { addr, port: 0 };
  if (!withPort) return `a port is not allowed here ('${text}')`;
  if (!/^\d+$/.test(port) || Number(port) > 65535) return `'${port}' is not a port (0-65535)`;
  return { addr, port: Number(port) };
}

export function parsePacketSpec(text: string): SpecResult {
  const words = text.trim().split(/\s+/);
  if (words.length < 4 || words[2] !== '->') return fail(`expected "PROTO SRC[:PORT] -> DST[:PORT] [key=value ...]", got "${text}"`);
  const [protoWord = '', srcText = '', , dstText = '', ...pairs] = words;
  const protoName = protoWord.toLowerCase();
  const protocol = PROTOCOLS[protoName] ?? (/^\d+$/.test(protoName) && Number(protoName) <= 255 ? Number(protoName) : undefined);
  if (protocol === undefined) return fail(`unknown protocol '${protoWord}' (tcp, udp, icmp or a protocol number)`);
  const ported = protocol === 6 || protocol === 17;
  const src = endpoint(srcText, ported);
  if (typeof src === 'string') return fail(src);
  const dst = endpoint(dstText, ported);
  if (typeof dst === 'string') return fail(dst);
  if (ported && (src.port === 0 || dst.port === 0) && !srcText.includes(':') !== !dstText.includes(':')) {
    // One side with a port and one without is almost certainly a typo.
    return fail('give ports on both sides or on neither');
  }
  let ttl = 64;
  let flags = protocol === 6 ? 0x02 : 0;
  let icmpType = 8;
  let icmpCode = 0;
  let len = 0;
  let id = 0;
  let vlan: number | null = null;
  let ct: CtSpec | undefined;
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    if (eq <= 0) return fail(`expected key=value, got '${pair}'`);
    const key = pair.slice(0, eq).toLowerCase();
    const value = pair.slice(eq + 1);
    const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
    switch (key) {
      case 'ttl':
        if (!(n <= 255)) return fail(`ttl must be 0-255, not '${value}'`);
        ttl = n;
        break;
      case 'flags': {
        if (protocol !== 6) return fail('flags are for tcp packets');
        flags = 0;
        for (const ch of value.toUpperCase()) {
          const bit = FLAG_BITS[ch];
          if (bit === undefined) return fail(`unknown TCP flag '${ch}' (S, A, F, R, P, U, E, C)`);
          flags |= bit;
        }
        break;
      }
      case 'type': {
        if (protocol !== 1) return fail('type is for icmp packets');
        const t = ICMP_TYPES[value.toLowerCase()] ?? n;
        if (!(t <= 255)) return fail(`unknown ICMP type '${value}'`);
        icmpType = t;
        break;
      }
      case 'code':
        if (protocol !== 1) return fail('code is for icmp packets');
        if (!(n <= 255)) return fail(`code must be 0-255, not '${value}'`);
        icmpCode = n;
        break;
      case 'len':
        if (!(n <= 65535)) return fail(`len must be at most 65535, not '${value}'`);
        len = n;
        break;
      case 'id':
        if (!(n <= 65535)) return fail(`id must be 0-65535, not '${value}'`);
        id = n;
        break;
      case 'vlan':
        if (!(n >= 1 && n <= 4094)) return fail(`vlan must be 1-4094, not '${value}'`);
        vlan = n;
        break;
      case 'ct':
        if (!['new', 'established', 'related', 'invalid'].includes(value.toLowerCase())) return fail(`ct must be new, established, related or invalid, not '${value}'`);
        ct = value.toLowerCase() as CtSpec;
        break;
      default:
        return fail(`unknown key '${key}' (ttl, flags, type, code, len, id, vlan, ct)`);
    }
  }
  const min = 20 + headerLength(protocol);
  if (len !== 0 && len < min) return fail(`len ${len} is below the smallest valid packet (${min} bytes)`);
  return {
    ok: true,
    spec: { protocol, protocolName: protoName, src: src.addr, dst: dst.addr, sport: src.port, dport: dst.port, ttl, flags, icmpType, icmpCode, len, id, vlan, ct },
  };
}

function headerLength(protocol: number): number {
  return protocol === 6 ? 20 : protocol === 17 ? 8 : protocol === 1 ? 8 : 0;
}

/** The IPv4 datagram a spec describes, with correct checksums. */
export function buildDatagram(spec: PacketSpec): Uint8Array {
  const l4len = headerLength(spec.protocol);
  const total = Math.max(spec.len, 20 + l4len);
  const b = new Uint8Array(total);
  b[0] = 0x45;
  b[2] = total >>> 8;
  b[3] = total & 255;
  b[4] = spec.id >>> 8;
  b[5] = spec.id & 255;
  b[8] = spec.ttl;
  b[9] = spec.protocol;
  write32(b, 12, spec.src);
  write32(b, 16, spec.dst);
  fillIpv4Checksum(b, 0);
  const l = 20;
  if (spec.protocol === 6 || spec.protocol === 17) {
    b[l] = spec.sport >>> 8;
    b[l + 1] = spec.sport & 255;
    b[l + 2] = spec.dport >>> 8;
    b[l + 3] = spec.dport & 255;
  }
  if (spec.protocol === 6) {
    write32(b, l + 4, 1);
    if (spec.flags & 0x10) write32(b, l + 8, 1);
    b[l + 12] = 5 << 4;
    b[l + 13] = spec.flags;
    b[l + 14] = 0xfa;
    b[l + 15] = 0xf0;
    fillTcpChecksum(b, l, total - l, spec.src, spec.dst);
  } else if (spec.protocol === 17) {
    b[l + 4] = (total - l) >>> 8;
    b[l + 5] = (total - l) & 255;
    fillUdpChecksum(b, l, spec.src, spec.dst);
  } else if (spec.protocol === 1) {
    b[l] = spec.icmpType;
    b[l + 1] = spec.icmpCode;
    b[l + 5] = 1; // echo identifier 1
    b[l + 7] = 1; // sequence 1
    fillIcmpv4Checksum(b, l, total);
  }
  return b;
}

function write32(b: Uint8Array, at: number, n: number): void {
  b[at] = n >>> 24;
  b[at + 1] = (n >>> 16) & 255;
  b[at + 2] = (n >>> 8) & 255;
  b[at + 3] = n & 255;
}

/** A spec as text again (for reports). */
export function formatPacketSpec(spec: PacketSpec): string {
  const ported = spec.protocol === 6 || spec.protocol === 17;
  const ep = (a: number, p: number) => (ported ? `${formatIpv4Address(a)}:${p}` : formatIpv4Address(a));
  return `${spec.protocolName} ${ep(spec.src, spec.sport)} -> ${ep(spec.dst, spec.dport)}`;
}
