import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkUdp,
  computeUdpChecksum,
  fillUdpChecksum,
  rewriteUdpDstPort,
  setUdpChecksum,
  setUdpDstPort,
  setUdpLength,
  setUdpSrcPort,
  udpChecksum,
  udpChecksumIsValid,
  udpDstPort,
  udpLength,
  udpPayload,
  udpPayloadLen,
  udpPayloadOffset,
  UdpRepr,
  udpSrcPort,
} from '../../../runtime/wire/udp.ts';
import { DNS_QUERY, ip, TIME_EXCEEDED } from './frames.ts';

const UDP = 34;
const SRC = ip('10.0.2.15');
const DST = ip('10.0.2.3');
const dnsMessage = () => DNS_QUERY.slice(UDP + 8);

function withByte(frame: Uint8Array, at: number, value: number): Uint8Array {
  const copy = frame.slice();
  copy[at] = value;
  return copy;
}

describe('UDP datagram', () => {
  it('reads ports, length and checksum of a captured DNS query', () => {
    expect(checkUdp(DNS_QUERY, UDP)).toBeUndefined();
    expect(udpSrcPort(DNS_QUERY, UDP)).toBe(41234);
    expect(udpDstPort(DNS_QUERY, UDP)).toBe(53);
    expect(udpLength(DNS_QUERY, UDP)).toBe(48);
    expect(udpChecksum(DNS_QUERY, UDP)).toBe(0x5282);
    expect(udpPayloadOffset(UDP)).toBe(42);
    expect(udpPayloadLen(DNS_QUERY, UDP)).toBe(40);
    expect(udpPayload(DNS_QUERY, UDP)).toEqual(dnsMessage());
  });

  it('verifies the checksum of the captured query against its pseudo-header', () => {
    expect(udpChecksumIsValid(DNS_QUERY, UDP, SRC, DST)).toBe(true);
    expect(udpChecksumIsValid(DNS_QUERY, UDP, SRC, ip('10.0.2.4'))).toBe(false);
  });

  it('writes the captured query with its setters', () => {
    const bytes = new Uint8Array(48);
    bytes.set(dnsMessage(), 8);
    setUdpSrcPort(bytes, 0, 41234);
    setUdpDstPort(bytes, 0, 53);
    setUdpLength(bytes, 0, 48);
    fillUdpChecksum(bytes, 0, SRC, DST);
    expect(bytes).toEqual(DNS_QUERY.subarray(UDP));
  });

  it('parses the captured query', () => {
    expect(UdpRepr.parse(DNS_QUERY, UDP, DNS_QUERY.length, SRC, DST)).toEqual({ srcPort: 41234, dstPort: 53, payload: dnsMessage() });
  });

  it('emits the captured query byte for byte', () => {
    const repr: UdpRepr = { srcPort: 41234, dstPort: 53, payload: dnsMessage() };
    const bytes = new Uint8Array(UdpRepr.bufferLen(repr));
    expect(UdpRepr.emit(repr, bytes, 0, SRC, DST)).toBeUndefined();
    expect(bytes).toEqual(DNS_QUERY.subarray(UDP));
  });

  it('reads the traceroute probe quoted in a captured time exceeded', () => {
    const probe = 42 + 20;
    expect(checkUdp(TIME_EXCEEDED, probe)).toBeUndefined();
    expect(udpDstPort(TIME_EXCEEDED, probe)).toBe(33434);
    expect(udpChecksumIsValid(TIME_EXCEEDED, probe, SRC, 0x08080808)).toBe(true);
  });

  it('round-trips any representation through emit and parse', () => {
    const repr = fc.record({
      srcPort: fc.nat({ max: 0xffff }),
      dstPort: fc.integer({ min: 1, max: 0xffff }),
      payload: fc.uint8Array({ maxLength: 100 }),
    });
    fc.assert(
      fc.property(repr, fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), (r, src, dst) => {
        const bytes = new Uint8Array(UdpRepr.bufferLen(r));
        UdpRepr.emit(r, bytes, 0, src, dst);
        expect(UdpRepr.parse(bytes, 0, bytes.length, src, dst)).toEqual(r);
      }),
    );
  });
});

describe('UDP checksum', () => {
  it('treats a zero checksum as none and accepts the datagram', () => {
    const bytes = DNS_QUERY.slice(UDP);
    setUdpChecksum(bytes, 0, 0);
    expect(udpChecksumIsValid(bytes, 0, SRC, DST)).toBe(true);
    expect(UdpRepr.parse(bytes, 0, bytes.length, SRC, DST)).toMatchObject({ dstPort: 53 });
  });

  it('sends no checksum when asked to', () => {
    const bytes = new Uint8Array(48);
    UdpRepr.emit({ srcPort: 41234, dstPort: 53, payload: dnsMessage() }, bytes, 0, SRC, DST, false);
    expect(udpChecksum(bytes, 0)).toBe(0);
  });

  it('sends a computed checksum of 0 as 0xFFFF and accepts it', () => {
    // The first payload word is chosen to make everything else sum to all ones.
    const bytes = DNS_QUERY.slice(UDP);
    bytes[8] = 0;
    bytes[9] = 0;
    const word = computeUdpChecksum(bytes, 0, SRC, DST);
    bytes[8] = word >>> 8;
    bytes[9] = word & 0xff;
    expect(computeUdpChecksum(bytes, 0, SRC, DST)).toBe(0);
    fillUdpChecksum(bytes, 0, SRC, DST);
    expect(udpChecksum(bytes, 0)).toBe(0xffff);
    expect(udpChecksumIsValid(bytes, 0, SRC, DST)).toBe(true);
  });

  it('computes the checksum without writing to the buffer', () => {
    const bytes = DNS_QUERY.slice(UDP);
    expect(computeUdpChecksum(bytes, 0, SRC, DST)).toBe(0x5282);
    expect(bytes).toEqual(DNS_QUERY.subarray(UDP));
  });

  it('keeps the checksum right when NAT rewrites the destination port', () => {
    const bytes = DNS_QUERY.slice(UDP);
    rewriteUdpDstPort(bytes, 0, 5353);
    expect(udpDstPort(bytes, 0)).toBe(5353);
    expect(udpChecksumIsValid(bytes, 0, SRC, DST)).toBe(true);
  });

  it('rejects a wrong checksum', () => {
    expect(UdpRepr.parse(withByte(DNS_QUERY, 60, 0), UDP, DNS_QUERY.length, SRC, DST)).toBe('bad-checksum');
  });

  it('skips the checksum when asked to', () => {
    expect(UdpRepr.parse(withByte(DNS_QUERY, 60, 0), UDP, DNS_QUERY.length, SRC, DST, false)).toMatchObject({ dstPort: 53 });
  });
});

describe('UDP validation', () => {
  it('reports fewer than 8 bytes as truncated', () => {
    expect(checkUdp(DNS_QUERY, UDP, UDP + 7)).toBe('truncated');
  });

  it('rejects a length below the header size', () => {
    expect(checkUdp(withByte(DNS_QUERY, UDP + 5, 7), UDP)).toBe('bad-length');
  });

  it('rejects a length beyond the IP payload', () => {
    expect(checkUdp(DNS_QUERY, UDP, DNS_QUERY.length - 1)).toBe('bad-length');
    expect(checkUdp(withByte(DNS_QUERY, UDP + 4, 0xff), UDP)).toBe('bad-length');
  });

  it('accepts a length shorter than the IP payload and ignores the rest', () => {
    const bytes = withByte(DNS_QUERY, UDP + 5, 40);
    expect(checkUdp(bytes, UDP)).toBeUndefined();
    expect(udpPayload(bytes, UDP)).toHaveLength(32);
  });

  it('rejects destination port 0', () => {
    const bytes = DNS_QUERY.slice(UDP);
    setUdpDstPort(bytes, 0, 0);
    fillUdpChecksum(bytes, 0, SRC, DST);
    expect(UdpRepr.parse(bytes, 0, bytes.length, SRC, DST)).toBe('bad-port');
  });

  it('refuses to emit into a buffer that is too small', () => {
    expect(UdpRepr.emit({ srcPort: 1, dstPort: 2, payload: new Uint8Array(10) }, new Uint8Array(17), 0, SRC, DST)).toBe('buffer-too-small');
  });
});
