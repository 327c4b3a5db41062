import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checksumIsValid,
  checksumSum,
  foldChecksum,
  internetChecksum,
  pseudoHeaderSum,
  udpChecksumForWire,
  updateChecksum16,
  updateChecksum32,
  updateUdpChecksum16,
  updateUdpChecksum32,
} from '../../../runtime/wire/checksum.ts';
import { readU16 } from '../../../runtime/wire/field.ts';
import {
  decrementIpv4Ttl,
  fillIpv4Checksum,
  ipv4Checksum,
  Ipv4Repr,
  rewriteIpv4Dst,
  rewriteIpv4Src,
} from '../../../runtime/wire/ipv4.ts';
import {
  adjustTcpChecksumForAddress,
  computeTcpChecksum,
  rewriteTcpDstPort,
  rewriteTcpSrcPort,
  tcpChecksum,
  tcpChecksumIsValid,
  TcpRepr,
} from '../../../runtime/wire/tcp.ts';
import {
  adjustUdpChecksumForAddress,
  computeUdpChecksum,
  fillUdpChecksum,
  rewriteUdpDstPort,
  rewriteUdpSrcPort,
  udpChecksum,
  udpChecksumIsValid,
  UdpRepr,
} from '../../../runtime/wire/udp.ts';
import { hex, WIKIPEDIA_IPV4_HEADER } from './frames.ts';

const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.nat({ max: 0xffffffff });
const u8 = fc.integer({ min: 0, max: 0xff });

describe('Internet checksum (RFC 1071)', () => {
  it('sums the RFC 1071 section 3 example to 0xddf2 and checksums it as 0x220d', () => {
    const bytes = hex('0001 f203 f4f5 f6f7');
    expect(foldChecksum(checksumSum(bytes, 0, 8))).toBe(0xddf2);
    expect(internetChecksum(bytes, 0, 8)).toBe(0x220d);
  });

  it("computes 0xb861 for Wikipedia's worked IPv4 header", () => {
    const header = WIKIPEDIA_IPV4_HEADER.slice();
    header[10] = 0;
    header[11] = 0;
    expect(internetChecksum(header, 0, 20)).toBe(0xb861);
  });

  it('accepts a header whose stored checksum is right', () => {
    expect(checksumIsValid(WIKIPEDIA_IPV4_HEADER, 0, 20)).toBe(true);
  });

  it('rejects a header with one bit flipped', () => {
    const header = WIKIPEDIA_IPV4_HEADER.slice();
    header[8] ^= 0x01;
    expect(checksumIsValid(header, 0, 20)).toBe(false);
  });

  it('pads an odd last byte with a zero byte', () => {
    expect(internetChecksum(hex('0102 03'), 0, 3)).toBe(internetChecksum(hex('0102 0300'), 0, 4));
  });

  it('covers only the given range of a larger buffer', () => {
    const buffer = hex('ffff 0001 f203 f4f5 f6f7 ffff');
    expect(internetChecksum(buffer, 2, 10)).toBe(0x220d);
  });

  it('clamps a range that runs past the buffer instead of throwing', () => {
    expect(internetChecksum(hex('0001 f203 f4f5 f6f7'), 0, 1_000_000)).toBe(0x220d);
    expect(internetChecksum(hex('0001'), -5, 2)).toBe(0xffff);
    expect(internetChecksum(hex('0001'), Number.NaN, Number.NaN)).toBe(0xffff);
  });

  it('sums a long range read as 32-bit words exactly as pairs of bytes, at any offset and length', () => {
    const pairs = (b: Uint8Array, start: number, end: number) => {
      let sum = 0;
      for (let i = start; i < end; i += 2) sum += (b[i]! << 8) | (i + 1 < end ? b[i + 1]! : 0);
      return sum;
    };
    const range = fc.uint8Array({ minLength: 0, maxLength: 400, size: 'max' }).chain((bytes) =>
      fc.tuple(fc.constant(bytes), fc.nat({ max: bytes.length }), fc.nat({ max: bytes.length }), fc.nat({ max: 7 })),
    );
    fc.assert(
      fc.property(range, ([bytes, a, b, shift]) => {
        // A view that starts inside its ArrayBuffer, as a frame inside a receive batch does.
        const backing = new Uint8Array(bytes.length + shift);
        backing.set(bytes, shift);
        const view = backing.subarray(shift);
        const [start, end] = a <= b ? [a, b] : [b, a];
        expect(checksumSum(view, start, end, 7)).toBe(pairs(bytes, start, end) + 7);
      }),
    );
    const ones = new Uint8Array(65535).fill(0xff);
    expect(checksumSum(ones, 0, ones.length)).toBe(pairs(ones, 0, ones.length));
  });

  it('sums the pseudo-header as its twelve bytes would', () => {
    fc.assert(
      fc.property(u32, u32, u8, u16, (src, dst, protocol, length) => {
        const bytes = new Uint8Array(12);
        const view = new DataView(bytes.buffer);
        view.setUint32(0, src);
        view.setUint32(4, dst);
        bytes[9] = protocol;
        view.setUint16(10, length);
        expect(foldChecksum(pseudoHeaderSum(src, dst, protocol, length))).toBe(foldChecksum(checksumSum(bytes, 0, 12)));
      }),
    );
  });
});

describe('incremental checksum update (RFC 1624)', () => {
  it('gives 0x0000 in the RFC 1624 section 4 example where RFC 1141 gave 0xFFFF', () => {
    expect(updateChecksum16(0xdd2f, 0x5555, 0x3285)).toBe(0x0000);
  });

  it('is the identity when the field does not change', () => {
    fc.assert(fc.property(u16, u16, (checksum, word) => {
      fc.pre(checksum !== 0xffff);
      expect(updateChecksum16(checksum, word, word)).toBe(checksum);
    }));
  });

  const ipv4Header = fc.record({
    src: u32,
    dst: u32,
    protocol: u8,
    ttl: u8,
    payloadLen: fc.integer({ min: 0, max: 1000 }),
    dscp: fc.integer({ min: 0, max: 63 }),
    ecn: fc.integer({ min: 0, max: 3 }),
    ident: u16,
    dontFrag: fc.boolean(),
    moreFrags: fc.boolean(),
    fragOffset: fc.integer({ min: 0, max: 0x1fff }).map((units) => units * 8),
    options: fc.integer({ min: 0, max: 10 }).chain((words) => fc.uint8Array({ minLength: words * 4, maxLength: words * 4 })),
  });

  function emitted(repr: Ipv4Repr): Uint8Array {
    const bytes = new Uint8Array(Ipv4Repr.bufferLen(repr));
    expect(Ipv4Repr.emit(repr, bytes, 0)).toBeUndefined();
    return bytes;
  }

  function recomputed(bytes: Uint8Array): number {
    const copy = bytes.slice();
    fillIpv4Checksum(copy, 0);
    return ipv4Checksum(copy, 0);
  }

  it('equals full recomputation for any 16-bit word of any IPv4 header after the first', () => {
    fc.assert(
      fc.property(ipv4Header, fc.nat(), u16, (repr, which, newWord) => {
        const bytes = emitted(repr);
        const words = bytes.length / 2;
        const at = 2 * (which % words);
        // Word 0 holds version and IHL: changing it changes what the checksum covers.
        fc.pre(at !== 0 && at !== 10);
        const oldWord = readU16(bytes, at);
        bytes[at] = newWord >>> 8;
        bytes[at + 1] = newWord & 0xff;
        bytes[10] = 0;
        bytes[11] = 0;
        const before = recomputed(emitted(repr));
        bytes[10] = before >>> 8;
        bytes[11] = before & 0xff;
        expect(updateChecksum16(before, oldWord, newWord)).toBe(recomputed(bytes));
      }),
      { numRuns: 2000 },
    );
  });

  it('equals full recomputation when NAT rewrites either address', () => {
    fc.assert(
      fc.property(ipv4Header, u32, u32, (repr, newSrc, newDst) => {
        const bytes = emitted(repr);
        rewriteIpv4Src(bytes, 0, newSrc);
        rewriteIpv4Dst(bytes, 0, newDst);
        expect(ipv4Checksum(bytes, 0)).toBe(recomputed(bytes));
        expect(bytes).toEqual(emitted({ ...repr, src: newSrc, dst: newDst }));
      }),
      { numRuns: 1000 },
    );
  });

  it('equals full recomputation when a router decrements the TTL', () => {
    fc.assert(
      fc.property(ipv4Header, (repr) => {
        fc.pre(repr.ttl > 0);
        const bytes = emitted(repr);
        expect(decrementIpv4Ttl(bytes, 0)).toBe(repr.ttl - 1);
        expect(bytes).toEqual(emitted({ ...repr, ttl: repr.ttl - 1 }));
      }),
      { numRuns: 1000 },
    );
  });

  it('matches the two 16-bit updates a 32-bit change is made of', () => {
    fc.assert(
      fc.property(u16, u32, u32, (checksum, oldValue, newValue) => {
        fc.pre(checksum !== 0xffff);
        const stepwise = updateChecksum16(
          updateChecksum16(checksum, oldValue >>> 16, newValue >>> 16),
          oldValue & 0xffff,
          newValue & 0xffff,
        );
        expect(updateChecksum32(checksum, oldValue, newValue)).toBe(stepwise);
      }),
    );
  });

  const segment = fc.record({
    src: u32,
    dst: u32,
    repr: fc.record({
      srcPort: u16,
      dstPort: u16,
      seq: u32,
      ack: u32,
      flags: u8,
      window: u16,
      urgent: u16,
      options: fc.integer({ min: 0, max: 10 }).chain((words) => fc.uint8Array({ minLength: words * 4, maxLength: words * 4 })),
      payload: fc.uint8Array({ maxLength: 64 }),
    }),
  });

  it('equals full recomputation of a TCP checksum after NAT rewrites ports and addresses', () => {
    fc.assert(
      fc.property(segment, u16, u16, u32, u32, ({ src, dst, repr }, newSrcPort, newDstPort, newSrc, newDst) => {
        const bytes = new Uint8Array(TcpRepr.bufferLen(repr));
        TcpRepr.emit(repr, bytes, 0, src, dst);
        rewriteTcpSrcPort(bytes, 0, newSrcPort);
        rewriteTcpDstPort(bytes, 0, newDstPort);
        adjustTcpChecksumForAddress(bytes, 0, src, newSrc);
        adjustTcpChecksumForAddress(bytes, 0, dst, newDst);
        expect(tcpChecksum(bytes, 0)).toBe(computeTcpChecksum(bytes, 0, bytes.length, newSrc, newDst));
        expect(tcpChecksumIsValid(bytes, 0, bytes.length, newSrc, newDst)).toBe(true);
      }),
      { numRuns: 1000 },
    );
  });
});

describe('UDP checksum zero rule', () => {
  it('sends a computed 0 as 0xFFFF and leaves every other value alone', () => {
    expect(udpChecksumForWire(0)).toBe(0xffff);
    expect(udpChecksumForWire(0x1234)).toBe(0x1234);
  });

  it('keeps a zero (absent) checksum at zero through any update', () => {
    fc.assert(
      fc.property(u16, u16, u32, u32, (oldWord, newWord, oldValue, newValue) => {
        expect(updateUdpChecksum16(0, oldWord, newWord)).toBe(0);
        expect(updateUdpChecksum32(0, oldValue, newValue)).toBe(0);
      }),
    );
  });

  /**
   * A datagram whose payload starts with a word chosen so that the checksum
   * computes to 0: the word is set to the checksum of everything else, and
   * S + ~S is a one's-complement zero.
   */
  function forceZeroChecksum(bytes: Uint8Array, src: number, dst: number): void {
    bytes[8] = 0;
    bytes[9] = 0;
    const word = computeUdpChecksum(bytes, 0, src, dst);
    bytes[8] = word >>> 8;
    bytes[9] = word & 0xff;
  }

  const datagram = fc.record({
    src: u32,
    dst: u32,
    srcPort: u16,
    dstPort: u16,
    payload: fc.uint8Array({ minLength: 2, maxLength: 64 }),
  });

  function emitDatagram(d: { src: number; dst: number; srcPort: number; dstPort: number; payload: Uint8Array }): Uint8Array {
    const bytes = new Uint8Array(8 + d.payload.length);
    UdpRepr.emit(d, bytes, 0, d.src, d.dst);
    return bytes;
  }

  it('fills 0xFFFF for a datagram whose checksum computes to 0, and verifies it', () => {
    fc.assert(
      fc.property(datagram, (d) => {
        const bytes = emitDatagram(d);
        forceZeroChecksum(bytes, d.src, d.dst);
        expect(computeUdpChecksum(bytes, 0, d.src, d.dst)).toBe(0);
        fillUdpChecksum(bytes, 0, d.src, d.dst);
        expect(udpChecksum(bytes, 0)).toBe(0xffff);
        expect(udpChecksumIsValid(bytes, 0, d.src, d.dst)).toBe(true);
      }),
    );
  });

  it('equals full recomputation after NAT, including results and inputs of 0xFFFF', () => {
    fc.assert(
      fc.property(
        datagram,
        u16,
        u16,
        u32,
        u32,
        fc.constantFrom('none', 'zero-before', 'zero-after'),
        (d, newSrcPort, newDstPort, newSrc, newDst, zero) => {
          const after = emitDatagram({ ...d, srcPort: newSrcPort, dstPort: newDstPort, src: newSrc, dst: newDst });
          if (zero === 'zero-after') forceZeroChecksum(after, newSrc, newDst);
          fillUdpChecksum(after, 0, newSrc, newDst);
          // The datagram before NAT carries the same payload as the one after it.
          const before = emitDatagram({ ...d, payload: after.slice(8) });
          if (zero === 'zero-before') forceZeroChecksum(before, d.src, d.dst);
          fillUdpChecksum(before, 0, d.src, d.dst);
          const expected = emitDatagram({ ...d, srcPort: newSrcPort, dstPort: newDstPort, src: newSrc, dst: newDst, payload: before.slice(8) });

          rewriteUdpSrcPort(before, 0, newSrcPort);
          rewriteUdpDstPort(before, 0, newDstPort);
          adjustUdpChecksumForAddress(before, 0, d.src, newSrc);
          adjustUdpChecksumForAddress(before, 0, d.dst, newDst);
          expect(before).toEqual(expected);
          if (zero === 'zero-after') expect(udpChecksum(before, 0)).toBe(0xffff);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('leaves a datagram sent without a checksum without one after NAT', () => {
    fc.assert(
      fc.property(datagram, u16, u32, (d, newPort, newSrc) => {
        const bytes = new Uint8Array(8 + d.payload.length);
        UdpRepr.emit(d, bytes, 0, d.src, d.dst, false);
        rewriteUdpSrcPort(bytes, 0, newPort);
        adjustUdpChecksumForAddress(bytes, 0, d.src, newSrc);
        expect(udpChecksum(bytes, 0)).toBe(0);
      }),
    );
  });
});
