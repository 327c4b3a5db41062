import { describe, expect, it } from 'vitest';
import {
  checkIcmpv4,
  fillIcmpv4Checksum,
  icmpv4Checksum,
  icmpv4ChecksumIsValid,
  icmpv4Code,
  icmpv4DataOffset,
  icmpv4EchoIdent,
  icmpv4EchoSeq,
  icmpv4NextHopMtu,
  icmpv4QuoteLen,
  Icmpv4Repr,
  icmpv4Type,
  Icmpv4Type,
  Icmpv4Unreachable,
  setIcmpv4Code,
  setIcmpv4EchoIdent,
  setIcmpv4EchoSeq,
  setIcmpv4NextHopMtu,
  setIcmpv4Type,
} from '../../../runtime/wire/icmpv4.ts';
import { checkIpv4, ipv4Dst, ipv4PayloadOffset } from '../../../runtime/wire/ipv4.ts';
import { checkUdp, udpDstPort, udpSrcPort } from '../../../runtime/wire/udp.ts';
import { DNS_QUERY, FRAG_NEEDED, hex, PING_REPLY, PING_REQUEST, PORT_UNREACHABLE, TIME_EXCEEDED } from './frames.ts';

/** Every captured ICMP message here sits after a 20-byte IPv4 header. */
const ICMP = 34;
const message = (frame: Uint8Array) => frame.slice(ICMP);

function parsed(frame: Uint8Array): Icmpv4Repr {
  const repr = Icmpv4Repr.parse(frame, ICMP);
  if (typeof repr === 'string') throw new Error(repr);
  return repr;
}

function emitted(repr: Icmpv4Repr): Uint8Array {
  const bytes = new Uint8Array(Icmpv4Repr.bufferLen(repr));
  expect(Icmpv4Repr.emit(repr, bytes, 0)).toBeUndefined();
  return bytes;
}

function withByte(frame: Uint8Array, at: number, value: number): Uint8Array {
  const copy = frame.slice();
  copy[at] = value;
  return copy;
}

describe('ICMPv4 echo', () => {
  it('reads type, code, checksum, identifier and sequence of a captured ping', () => {
    expect(checkIcmpv4(PING_REQUEST, ICMP)).toBeUndefined();
    expect(icmpv4Type(PING_REQUEST, ICMP)).toBe(Icmpv4Type.EchoRequest);
    expect(icmpv4Code(PING_REQUEST, ICMP)).toBe(0);
    expect(icmpv4Checksum(PING_REQUEST, ICMP)).toBe(0xf5b4);
    expect(icmpv4EchoIdent(PING_REQUEST, ICMP)).toBe(0x0b5e);
    expect(icmpv4EchoSeq(PING_REQUEST, ICMP)).toBe(1);
    expect(icmpv4ChecksumIsValid(PING_REQUEST, ICMP, PING_REQUEST.length)).toBe(true);
    expect(icmpv4DataOffset(ICMP)).toBe(42);
  });

  it('turns the captured request into the captured reply with setters', () => {
    const bytes = message(PING_REQUEST);
    setIcmpv4Type(bytes, 0, Icmpv4Type.EchoReply);
    fillIcmpv4Checksum(bytes, 0, bytes.length);
    expect(bytes).toEqual(message(PING_REPLY));
  });

  it('writes identifier and sequence with setters', () => {
    const bytes = new Uint8Array(8);
    setIcmpv4Type(bytes, 0, 8);
    setIcmpv4Code(bytes, 0, 0);
    setIcmpv4EchoIdent(bytes, 0, 0x0b5e);
    setIcmpv4EchoSeq(bytes, 0, 1);
    expect(bytes).toEqual(hex('0800 0000 0b5e 0001'));
  });

  it('parses the captured request', () => {
    expect(parsed(PING_REQUEST)).toEqual({ kind: 'echo-request', ident: 0x0b5e, seq: 1, data: PING_REQUEST.slice(42) });
  });

  it('emits the captured reply byte for byte', () => {
    const request = parsed(PING_REQUEST);
    if (request.kind !== 'echo-request') throw new Error(request.kind);
    expect(emitted({ ...request, kind: 'echo-reply' })).toEqual(message(PING_REPLY));
  });

  it('rejects an echo with a non-zero code', () => {
    const bytes = withByte(PING_REQUEST, ICMP + 1, 1);
    fillIcmpv4Checksum(bytes, ICMP, bytes.length);
    expect(Icmpv4Repr.parse(bytes, ICMP)).toBe('bad-code');
  });
});

describe('ICMPv4 errors', () => {
  it('reads a captured port unreachable and finds the quoted datagram inside', () => {
    expect(icmpv4Type(PORT_UNREACHABLE, ICMP)).toBe(Icmpv4Type.DestUnreachable);
    expect(icmpv4Code(PORT_UNREACHABLE, ICMP)).toBe(Icmpv4Unreachable.Port);
    expect(icmpv4ChecksumIsValid(PORT_UNREACHABLE, ICMP, PORT_UNREACHABLE.length)).toBe(true);
    const quoted = icmpv4DataOffset(ICMP);
    expect(checkIpv4(PORT_UNREACHABLE, quoted)).toBeUndefined();
    const udp = ipv4PayloadOffset(PORT_UNREACHABLE, quoted);
    expect(checkUdp(PORT_UNREACHABLE, udp)).toBeUndefined();
    expect([udpSrcPort(PORT_UNREACHABLE, udp), udpDstPort(PORT_UNREACHABLE, udp)]).toEqual([41234, 53]);
  });

  it('parses the captured port unreachable with the whole query as its quote', () => {
    expect(parsed(PORT_UNREACHABLE)).toEqual({
      kind: 'dest-unreachable',
      code: Icmpv4Unreachable.Port,
      nextHopMtu: 0,
      quote: DNS_QUERY.slice(14),
    });
  });

  it('emits the captured port unreachable byte for byte', () => {
    expect(emitted({ kind: 'dest-unreachable', code: 3, nextHopMtu: 0, quote: DNS_QUERY.slice(14) })).toEqual(message(PORT_UNREACHABLE));
  });

  it('reads the next-hop MTU of a captured fragmentation-needed', () => {
    expect(icmpv4Code(FRAG_NEEDED, ICMP)).toBe(Icmpv4Unreachable.FragNeeded);
    expect(icmpv4NextHopMtu(FRAG_NEEDED, ICMP)).toBe(1400);
    expect(parsed(FRAG_NEEDED)).toEqual({ kind: 'dest-unreachable', code: 4, nextHopMtu: 1400, quote: FRAG_NEEDED.slice(42) });
  });

  it('emits the captured fragmentation-needed byte for byte', () => {
    expect(emitted({ kind: 'dest-unreachable', code: 4, nextHopMtu: 1400, quote: FRAG_NEEDED.slice(42) })).toEqual(message(FRAG_NEEDED));
  });

  it('writes the next-hop MTU with its setter', () => {
    const bytes = message(FRAG_NEEDED);
    setIcmpv4NextHopMtu(bytes, 0, 0);
    setIcmpv4NextHopMtu(bytes, 0, 1400);
    expect(bytes).toEqual(message(FRAG_NEEDED));
  });

  it('parses a captured time exceeded quoting the traceroute probe', () => {
    const repr = parsed(TIME_EXCEEDED);
    expect(repr).toEqual({ kind: 'time-exceeded', code: 0, quote: TIME_EXCEEDED.slice(42) });
    if (repr.kind !== 'time-exceeded') return;
    expect(ipv4Dst(repr.quote, 0)).toBe(0x08080808);
  });

  it('emits the captured time exceeded byte for byte', () => {
    expect(emitted({ kind: 'time-exceeded', code: 0, quote: TIME_EXCEEDED.slice(42) })).toEqual(message(TIME_EXCEEDED));
  });

  it('quotes the IP header and 8 bytes of an offending datagram', () => {
    expect(icmpv4QuoteLen(DNS_QUERY, 14)).toBe(28);
    expect(icmpv4QuoteLen(FRAG_NEEDED, 42)).toBe(28);
  });

  it('quotes less when the offending datagram is shorter than header and 8 bytes', () => {
    const short = hex('4500 0018 0000 0000 4011 0000 0a00 020f 0a00 0203 a112 0035');
    expect(icmpv4QuoteLen(short, 0)).toBe(24);
  });

  it('quotes nothing from bytes that do not hold a whole IPv4 header', () => {
    expect(icmpv4QuoteLen(DNS_QUERY, 14, 30)).toBe(0);
    expect(icmpv4QuoteLen(hex('4f00 0100'), 0)).toBe(0);
  });

  it('rejects an error whose quote is not an IPv4 header', () => {
    const bytes = withByte(PORT_UNREACHABLE, 42, 0x60);
    fillIcmpv4Checksum(bytes, ICMP, bytes.length);
    expect(Icmpv4Repr.parse(bytes, ICMP)).toBe('bad-quote');
  });

  it('rejects an error whose quote is shorter than an IPv4 header', () => {
    const bytes = PORT_UNREACHABLE.slice(0, 42 + 19);
    fillIcmpv4Checksum(bytes, ICMP, bytes.length);
    expect(Icmpv4Repr.parse(bytes, ICMP)).toBe('bad-quote');
  });
});

describe('ICMPv4 validation', () => {
  it('reports fewer than 8 bytes as truncated', () => {
    expect(checkIcmpv4(PING_REQUEST, ICMP, ICMP + 7)).toBe('truncated');
    expect(Icmpv4Repr.parse(PING_REQUEST.subarray(0, ICMP + 7), ICMP)).toBe('truncated');
  });

  it('rejects a wrong checksum over header or data', () => {
    expect(icmpv4ChecksumIsValid(withByte(PING_REQUEST, 60, 0), ICMP, PING_REQUEST.length)).toBe(false);
    expect(Icmpv4Repr.parse(withByte(PING_REQUEST, 60, 0), ICMP)).toBe('bad-checksum');
  });

  it('skips the checksum when asked to, as upstream never checked it', () => {
    expect(Icmpv4Repr.parse(withByte(PING_REQUEST, 60, 0), ICMP, PING_REQUEST.length, false)).toMatchObject({ kind: 'echo-request' });
  });

  it('reports types it does not represent, such as a timestamp request', () => {
    const bytes = withByte(PING_REQUEST, ICMP, 13);
    fillIcmpv4Checksum(bytes, ICMP, bytes.length);
    expect(Icmpv4Repr.parse(bytes, ICMP)).toBe('unsupported-type');
  });

  it('refuses to emit into a buffer that is too small', () => {
    expect(Icmpv4Repr.emit({ kind: 'echo-request', ident: 1, seq: 1, data: new Uint8Array(8) }, new Uint8Array(15), 0)).toBe('buffer-too-small');
  });
});
