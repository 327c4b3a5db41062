import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkIpv4,
  decrementIpv4Ttl,
  fillIpv4Checksum,
  formatIpv4Address,
  IpProtocol,
  ipv4Checksum,
  ipv4ChecksumIsValid,
  ipv4Dscp,
  ipv4DontFrag,
  ipv4Dst,
  ipv4Ecn,
  ipv4FragOffset,
  ipv4HeaderLen,
  ipv4Ident,
  ipv4IsFragment,
  ipv4MoreFrags,
  ipv4Options,
  ipv4PayloadLen,
  ipv4PayloadOffset,
  ipv4Protocol,
  Ipv4Repr,
  ipv4Src,
  ipv4TotalLen,
  ipv4Ttl,
  ipv4Version,
  parseIpv4Address,
  rewriteIpv4Dst,
  setIpv4Dscp,
  setIpv4DontFrag,
  setIpv4Dst,
  setIpv4Ecn,
  setIpv4FragOffset,
  setIpv4HeaderLen,
  setIpv4Ident,
  setIpv4MoreFrags,
  setIpv4Protocol,
  setIpv4Src,
  setIpv4TotalLen,
  setIpv4Ttl,
  setIpv4Version,
} from '../../../runtime/wire/ipv4.ts';
import { checksumIsValid } from '../../../runtime/wire/checksum.ts';
import { hex, IGMP_ROUTER_ALERT, ip, PING_REQUEST, PORT_UNREACHABLE, WIKIPEDIA_IPV4_HEADER } from './frames.ts';

const IP = 14;
const pingHeader = () => PING_REQUEST.slice(IP, IP + 20);

function withByte(bytes: Uint8Array, at: number, value: number): Uint8Array {
  const copy = bytes.slice();
  copy[at] = value;
  return copy;
}

describe('IPv4 header', () => {
  it('reads every field of a captured ping', () => {
    expect(checkIpv4(PING_REQUEST, IP)).toBeUndefined();
    expect(ipv4Version(PING_REQUEST, IP)).toBe(4);
    expect(ipv4HeaderLen(PING_REQUEST, IP)).toBe(20);
    expect(ipv4Dscp(PING_REQUEST, IP)).toBe(0);
    expect(ipv4Ecn(PING_REQUEST, IP)).toBe(0);
    expect(ipv4TotalLen(PING_REQUEST, IP)).toBe(84);
    expect(ipv4Ident(PING_REQUEST, IP)).toBe(0x4a1c);
    expect(ipv4DontFrag(PING_REQUEST, IP)).toBe(true);
    expect(ipv4MoreFrags(PING_REQUEST, IP)).toBe(false);
    expect(ipv4FragOffset(PING_REQUEST, IP)).toBe(0);
    expect(ipv4IsFragment(PING_REQUEST, IP)).toBe(false);
    expect(ipv4Ttl(PING_REQUEST, IP)).toBe(64);
    expect(ipv4Protocol(PING_REQUEST, IP)).toBe(IpProtocol.Icmp);
    expect(ipv4Checksum(PING_REQUEST, IP)).toBe(0xd87c);
    expect(ipv4Src(PING_REQUEST, IP)).toBe(ip('10.0.2.15'));
    expect(ipv4Dst(PING_REQUEST, IP)).toBe(ip('10.0.2.2'));
    expect(ipv4Options(PING_REQUEST, IP)).toHaveLength(0);
    expect(ipv4PayloadOffset(PING_REQUEST, IP)).toBe(34);
    expect(ipv4PayloadLen(PING_REQUEST, IP)).toBe(64);
  });

  it('splits the TOS byte of an ICMP error into DSCP CS6 and no ECN', () => {
    expect(ipv4Dscp(PORT_UNREACHABLE, IP)).toBe(48);
    expect(ipv4Ecn(PORT_UNREACHABLE, IP)).toBe(0);
  });

  it('finds the Router Alert option of a captured IGMP report', () => {
    expect(checkIpv4(IGMP_ROUTER_ALERT, IP)).toBeUndefined();
    expect(ipv4HeaderLen(IGMP_ROUTER_ALERT, IP)).toBe(24);
    expect(ipv4Options(IGMP_ROUTER_ALERT, IP)).toEqual(hex('9404 0000'));
    expect(ipv4PayloadOffset(IGMP_ROUTER_ALERT, IP)).toBe(IP + 24);
  });

  it('reads fragment flags and offset in bytes', () => {
    const header = pingHeader();
    header[6] = 0x20; // MF, offset 185 units
    header[7] = 0xb9;
    expect(ipv4MoreFrags(header, 0)).toBe(true);
    expect(ipv4DontFrag(header, 0)).toBe(false);
    expect(ipv4FragOffset(header, 0)).toBe(1480);
    expect(ipv4IsFragment(header, 0)).toBe(true);
  });

  it('writes the captured ping header with its setters', () => {
    const bytes = new Uint8Array(20);
    setIpv4Version(bytes, 0, 4);
    setIpv4HeaderLen(bytes, 0, 20);
    setIpv4Dscp(bytes, 0, 0);
    setIpv4Ecn(bytes, 0, 0);
    setIpv4TotalLen(bytes, 0, 84);
    setIpv4Ident(bytes, 0, 0x4a1c);
    setIpv4DontFrag(bytes, 0, true);
    setIpv4MoreFrags(bytes, 0, false);
    setIpv4FragOffset(bytes, 0, 0);
    setIpv4Ttl(bytes, 0, 64);
    setIpv4Protocol(bytes, 0, IpProtocol.Icmp);
    setIpv4Src(bytes, 0, ip('10.0.2.15'));
    setIpv4Dst(bytes, 0, ip('10.0.2.2'));
    fillIpv4Checksum(bytes, 0);
    expect(bytes).toEqual(pingHeader());
  });

  it('sets DSCP and ECN without disturbing each other', () => {
    const bytes = new Uint8Array(20);
    setIpv4Ecn(bytes, 0, 3);
    setIpv4Dscp(bytes, 0, 46);
    expect(bytes[1]).toBe(0xbb);
    setIpv4Ecn(bytes, 0, 0);
    expect(ipv4Dscp(bytes, 0)).toBe(46);
  });

  it('parses the captured ping header into a representation', () => {
    expect(Ipv4Repr.parse(PING_REQUEST, IP)).toEqual({
      src: ip('10.0.2.15'),
      dst: ip('10.0.2.2'),
      protocol: 1,
      ttl: 64,
      payloadLen: 64,
      dscp: 0,
      ecn: 0,
      ident: 0x4a1c,
      dontFrag: true,
      moreFrags: false,
      fragOffset: 0,
      options: new Uint8Array(0),
    });
  });

  it('emits the captured ping header byte for byte', () => {
    const bytes = new Uint8Array(20);
    const repr: Ipv4Repr = { src: ip('10.0.2.15'), dst: ip('10.0.2.2'), protocol: 1, ttl: 64, payloadLen: 64, ident: 0x4a1c, dontFrag: true };
    expect(Ipv4Repr.bufferLen(repr)).toBe(20);
    expect(Ipv4Repr.emit(repr, bytes, 0)).toBeUndefined();
    expect(bytes).toEqual(pingHeader());
  });

  it('emits the captured IGMP header with its option byte for byte', () => {
    const repr = Ipv4Repr.parse(IGMP_ROUTER_ALERT, IP);
    if (typeof repr === 'string') throw new Error(repr);
    const bytes = new Uint8Array(Ipv4Repr.bufferLen(repr));
    expect(Ipv4Repr.emit(repr, bytes, 0)).toBeUndefined();
    expect(bytes).toEqual(IGMP_ROUTER_ALERT.subarray(IP, IP + 24));
  });

  it('pads options to a multiple of four with End of Option List', () => {
    const repr: Ipv4Repr = { src: 1, dst: 2, protocol: 2, ttl: 1, payloadLen: 0, options: hex('9404 00') };
    const bytes = new Uint8Array(Ipv4Repr.bufferLen(repr));
    Ipv4Repr.emit(repr, bytes, 0);
    expect(ipv4HeaderLen(bytes, 0)).toBe(24);
    expect(ipv4Options(bytes, 0)).toEqual(hex('9404 0000'));
  });

  it('refuses to emit more than 40 bytes of options', () => {
    const repr: Ipv4Repr = { src: 1, dst: 2, protocol: 2, ttl: 1, payloadLen: 0, options: new Uint8Array(41) };
    expect(Ipv4Repr.emit(repr, new Uint8Array(100), 0)).toBe('field-out-of-range');
  });

  it('refuses to emit a datagram longer than 65535 bytes', () => {
    const repr: Ipv4Repr = { src: 1, dst: 2, protocol: 17, ttl: 64, payloadLen: 65516 };
    expect(Ipv4Repr.emit(repr, new Uint8Array(20), 0)).toBe('field-out-of-range');
  });

  it('refuses to emit into a buffer that is too small', () => {
    expect(Ipv4Repr.emit({ src: 1, dst: 2, protocol: 17, ttl: 64, payloadLen: 0 }, new Uint8Array(19), 0)).toBe('buffer-too-small');
  });

  it('round-trips any representation through emit and parse', () => {
    const repr = fc.record({
      src: fc.nat({ max: 0xffffffff }),
      dst: fc.nat({ max: 0xffffffff }),
      protocol: fc.nat({ max: 255 }),
      ttl: fc.nat({ max: 255 }),
      payloadLen: fc.nat({ max: 64 }),
      dscp: fc.nat({ max: 63 }),
      ecn: fc.nat({ max: 3 }),
      ident: fc.nat({ max: 0xffff }),
      dontFrag: fc.boolean(),
      moreFrags: fc.boolean(),
      fragOffset: fc.nat({ max: 0x1fff }).map((units) => units * 8),
      options: fc.nat({ max: 10 }).chain((words) => fc.uint8Array({ minLength: words * 4, maxLength: words * 4 })),
    });
    fc.assert(
      fc.property(repr, (r) => {
        const bytes = new Uint8Array(Ipv4Repr.bufferLen(r) + r.payloadLen);
        expect(Ipv4Repr.emit(r, bytes, 0)).toBeUndefined();
        expect(Ipv4Repr.parse(bytes, 0)).toEqual(r);
      }),
    );
  });
});

describe('IPv4 validation', () => {
  it("accepts Wikipedia's worked header with checksum 0xb861 when its payload is present", () => {
    const datagram = new Uint8Array(0x73);
    datagram.set(WIKIPEDIA_IPV4_HEADER);
    expect(checkIpv4(datagram, 0)).toBeUndefined();
    expect(ipv4ChecksumIsValid(WIKIPEDIA_IPV4_HEADER, 0)).toBe(true);
  });

  it('validates a header checksum the same way whatever the header length and offset', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 80 }), fc.nat(20), fc.boolean(), (bytes, offset, fix) => {
        if (fix && offset + 20 <= bytes.length) {
          bytes[offset] = 0x45;
          fillIpv4Checksum(bytes, offset);
        }
        const headerEnd = offset + ipv4HeaderLen(bytes, offset);
        expect(ipv4ChecksumIsValid(bytes, offset)).toBe(checksumIsValid(bytes, offset, headerEnd));
      }),
    );
  });

  it('reports fewer than 20 bytes as truncated', () => {
    expect(checkIpv4(PING_REQUEST, IP, IP + 19)).toBe('truncated');
    expect(checkIpv4(PING_REQUEST.subarray(0, IP + 19), IP)).toBe('truncated');
  });

  it('rejects a version other than 4', () => {
    expect(checkIpv4(withByte(PING_REQUEST, IP, 0x65), IP)).toBe('bad-version');
  });

  it('rejects an IHL below 5', () => {
    expect(checkIpv4(withByte(PING_REQUEST, IP, 0x44), IP)).toBe('bad-header-length');
  });

  it('rejects a total length smaller than the header', () => {
    expect(checkIpv4(withByte(PING_REQUEST, IP + 3, 19), IP)).toBe('bad-total-length');
    expect(checkIpv4(withByte(IGMP_ROUTER_ALERT, IP + 3, 20), IP)).toBe('bad-total-length');
  });

  it('reports a total length beyond the received bytes as truncated', () => {
    expect(checkIpv4(PING_REQUEST, IP, PING_REQUEST.length - 1)).toBe('truncated');
    expect(checkIpv4(withByte(PING_REQUEST, IP + 2, 0x01), IP)).toBe('truncated');
  });

  it('reports an IHL claiming more header than was received as truncated', () => {
    const header = withByte(pingHeader(), 0, 0x4f);
    header[3] = 60;
    expect(checkIpv4(header, 0)).toBe('truncated');
  });

  it('accepts link padding after the total length', () => {
    const padded = new Uint8Array(60);
    padded.set(IGMP_ROUTER_ALERT);
    expect(checkIpv4(padded, IP)).toBeUndefined();
    expect(ipv4PayloadLen(padded, IP)).toBe(8);
  });

  it('rejects a wrong header checksum', () => {
    expect(checkIpv4(withByte(PING_REQUEST, IP + 11, 0x7d), IP)).toBe('bad-checksum');
    expect(Ipv4Repr.parse(withByte(PING_REQUEST, IP + 8, 63), IP)).toBe('bad-checksum');
  });

  it('skips the checksum when asked to, as for a NIC that verified it', () => {
    expect(checkIpv4(withByte(PING_REQUEST, IP + 11, 0x7d), IP, PING_REQUEST.length, false)).toBeUndefined();
  });

  it('does not let a checksum error in the payload matter', () => {
    expect(checkIpv4(withByte(PING_REQUEST, 40, 0), IP)).toBeUndefined();
  });
});

describe('IPv4 forwarding helpers', () => {
  it('decrements the TTL of the captured ping and keeps the checksum right', () => {
    const header = pingHeader();
    expect(decrementIpv4Ttl(header, 0)).toBe(63);
    expect(ipv4Ttl(header, 0)).toBe(63);
    expect(ipv4ChecksumIsValid(header, 0)).toBe(true);
    expect(ipv4Checksum(header, 0)).toBe(0xd97c);
  });

  it('leaves a TTL of 0 alone', () => {
    const header = withByte(pingHeader(), 8, 0);
    fillIpv4Checksum(header, 0);
    const before = header.slice();
    expect(decrementIpv4Ttl(header, 0)).toBe(0);
    expect(header).toEqual(before);
  });

  it('keeps the checksum right when the destination is rewritten', () => {
    const header = pingHeader();
    rewriteIpv4Dst(header, 0, ip('192.168.1.77'));
    expect(ipv4Dst(header, 0)).toBe(ip('192.168.1.77'));
    expect(ipv4ChecksumIsValid(header, 0)).toBe(true);
  });
});

describe('IPv4 addresses', () => {
  it('parses a dotted quad into an unsigned number', () => {
    expect(parseIpv4Address('10.0.0.1')).toBe(0x0a000001);
    expect(parseIpv4Address('255.255.255.255')).toBe(0xffffffff);
    expect(parseIpv4Address('0.0.0.0')).toBe(0);
  });

  it('formats a number as a dotted quad', () => {
    expect(formatIpv4Address(0xc0a80001)).toBe('192.168.0.1');
    expect(formatIpv4Address(0xffffffff)).toBe('255.255.255.255');
  });

  it.each([
    '',
    '10.0.0',
    '10.0.0.1.2',
    '256.0.0.1',
    '10.0.0.01',
    '010.0.0.1',
    ' 10.0.0.1',
    '10.0.0.1 ',
    '10..0.1',
    '1e1.0.0.1',
    '0x0a.0.0.1',
    '-1.0.0.0',
    '10.0.0.1/24',
  ])('rejects %j', (text) => {
    expect(parseIpv4Address(text)).toBeUndefined();
  });

  it('round-trips every address through format and parse', () => {
    fc.assert(fc.property(fc.nat({ max: 0xffffffff }), (addr) => {
      expect(parseIpv4Address(formatIpv4Address(addr))).toBe(addr);
    }));
  });
});
