import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { newPacket, type Packet } from '../../runtime/packet.ts';
import { Reassembler } from '../../runtime/reassembly.ts';
import { IpProtocol, Ipv4Repr, ipv4HeaderLen, ipv4Ident } from '../../runtime/wire/ipv4.ts';
import { checksumsValid, ip, packet, udp } from './build.ts';

const T0 = 50_000;

/** A whole UDP datagram with `size` payload bytes, patterned so misplaced bytes show. */
function datagram(size: number, ident = 0x4242, options?: Uint8Array): Packet {
  const payload = Uint8Array.from({ length: size }, (_, i) => (i * 7 + 3) & 0xff);
  const pkt = udp('192.0.2.1', 5000, '10.0.0.1', 6000, { payload, ident });
  if (options === undefined) return pkt;
  return withOptions(pkt, options);
}

function withOptions(pkt: Packet, options: Uint8Array): Packet {
  const body = pkt.bytes.slice(pkt.l4, pkt.end);
  const repr: Ipv4Repr = { src: ip('192.0.2.1'), dst: ip('10.0.0.1'), protocol: IpProtocol.Udp, ttl: 64, payloadLen: body.length, ident: ipv4Ident(pkt.bytes, pkt.l3), options };
  const bytes = new Uint8Array(14 + Ipv4Repr.bufferLen(repr) + body.length);
  bytes[12] = 0x08;
  Ipv4Repr.emit(repr, bytes, 14);
  bytes.set(body, 14 + Ipv4Repr.bufferLen(repr));
  return packet(bytes);
}

/** One fragment of `whole`: payload bytes [offset, offset + length) of its IP payload. */
function fragment(whole: Packet, offset: number, length: number, more = offset + length < whole.end - whole.l4): Packet {
  const headerLen = ipv4HeaderLen(whole.bytes, whole.l3);
  const repr: Ipv4Repr = {
    src: ip('192.0.2.1'),
    dst: ip('10.0.0.1'),
    protocol: IpProtocol.Udp,
    ttl: 64,
    payloadLen: length,
    ident: ipv4Ident(whole.bytes, whole.l3),
    moreFrags: more,
    fragOffset: offset,
    ...(offset === 0 && headerLen > 20 ? { options: whole.bytes.slice(whole.l3 + 20, whole.l4) } : {}),
  };
  const bytes = new Uint8Array(14 + Ipv4Repr.bufferLen(repr) + length);
  bytes[12] = 0x08;
  Ipv4Repr.emit(repr, bytes, 14);
  bytes.set(whole.bytes.subarray(whole.l4 + offset, whole.l4 + offset + length), 14 + Ipv4Repr.bufferLen(repr));
  return packet(bytes);
}

function hex(pkt: Packet): string {
  return Buffer.from(pkt.bytes.subarray(pkt.l3, pkt.end)).toString('hex');
}

describe('IPv4 reassembly', () => {
  it('passes a packet that is not a fragment through untouched', () => {
    const r = new Reassembler();
    const pkt = datagram(100);
    expect(r.add(pkt, T0)).toBe(pkt);
    expect(r.counters.fragments).toBe(0);
  });

  it('rebuilds a datagram from two fragments byte for byte', () => {
    const r = new Reassembler();
    const whole = datagram(1500);
    expect(r.add(fragment(whole, 0, 1480), T0)).toBeNull();
    const result = r.add(fragment(whole, 1480, 28), T0 + 1);
    expect(result).not.toBeNull();
    expect(hex(result!)).toBe(hex(whole));
    expect(checksumsValid(result!)).toBe(true);
    expect(r.size).toBe(0);
    expect(r.bytes).toBe(0);
  });

  it('accepts fragments in any order, the last one first', () => {
    const r = new Reassembler();
    const whole = datagram(40);
    expect(r.add(fragment(whole, 32, 16), T0)).toBeNull();
    expect(r.add(fragment(whole, 16, 16), T0)).toBeNull();
    expect(hex(r.add(fragment(whole, 0, 16), T0)!)).toBe(hex(whole));
  });

  it('reassembles any split into pieces arriving in any order', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 9, max: 3000 }),
        fc.array(fc.integer({ min: 1, max: 200 }), { minLength: 1, maxLength: 40 }),
        fc.infiniteStream(fc.nat()),
        (size, cuts, order) => {
          const whole = datagram(size);
          const total = size + 8;
          const pieces: [number, number][] = [];
          let at = 0;
          for (const cut of cuts) {
            const length = Math.min(cut * 8, total - at);
            if (length <= 0) break;
            pieces.push([at, length]);
            at += length;
          }
          if (at < total) pieces.push([at, total - at]);
          const shuffled = [...pieces];
          for (let i = shuffled.length - 1; i > 0; i--) {
            const j = order.next().value % (i + 1);
            [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
          }
          const r = new Reassembler();
          let result: Packet | null = null;
          for (const [offset, length] of shuffled) {
            expect(result).toBeNull();
            result = r.add(fragment(whole, offset, length), T0);
          }
          if (pieces.length === 1) return; // a single piece is no fragment at all
          expect(result).not.toBeNull();
          expect(hex(result!)).toBe(hex(whole));
        },
      ),
      { numRuns: 200 },
    );
  });

  it('keeps the IP options of the first fragment', () => {
    const r = new Reassembler();
    const whole = datagram(64, 7, Uint8Array.of(0x94, 0x04, 0, 0)); // router alert
    r.add(fragment(whole, 40, 32), T0);
    const result = r.add(fragment(whole, 0, 40), T0);
    expect(hex(result!)).toBe(hex(whole));
  });

  it('ignores an exact duplicate fragment', () => {
    const r = new Reassembler();
    const whole = datagram(40);
    r.add(fragment(whole, 0, 24), T0);
    expect(r.add(fragment(whole, 0, 24), T0)).toBeNull();
    expect(r.counters.duplicates).toBe(1);
    expect(hex(r.add(fragment(whole, 24, 24), T0)!)).toBe(hex(whole));
  });

  it('discards a datagram with overlapping fragments, including fragments still to come', () => {
    const r = new Reassembler();
    const whole = datagram(40);
    r.add(fragment(whole, 0, 24), T0);
    expect(r.add(fragment(whole, 16, 16, true), T0)).toBeNull();
    expect(r.counters.overlaps).toBe(1);
    expect(r.add(fragment(whole, 24, 24), T0)).toBeNull();
    expect(r.counters.discarded_fragments).toBe(1);
    expect(r.bytes).toBe(0);
  });

  it('starts over for the same identification once a discarded datagram has timed out', () => {
    const r = new Reassembler();
    const whole = datagram(40);
    r.add(fragment(whole, 0, 24), T0);
    r.add(fragment(whole, 8, 8, true), T0);
    r.add(fragment(whole, 0, 24), T0 + 15_000);
    expect(hex(r.add(fragment(whole, 24, 24), T0 + 15_001)!)).toBe(hex(whole));
  });

  it('drops a non-last fragment whose length is not a multiple of 8', () => {
    const r = new Reassembler();
    expect(r.add(fragment(datagram(40), 0, 20, true), T0)).toBeNull();
    expect(r.counters.bad_fragment).toBe(1);
    expect(r.size).toBe(0);
  });

  it('discards a datagram that would grow past 65535 bytes', () => {
    const r = new Reassembler();
    const whole = datagram(40);
    const last = fragment(whole, 0, 16, false);
    // The same bytes claimed at offset 65520: 20 + 65520 + 16 > 65535.
    last.bytes[last.l3 + 6] = 0x1f;
    last.bytes[last.l3 + 7] = 0xfe;
    expect(r.add(last, T0)).toBeNull();
    expect(r.counters.too_big).toBe(1);
  });

  it('discards a datagram whose fragments disagree on where it ends', () => {
    const r = new Reassembler();
    const whole = datagram(40);
    r.add(fragment(whole, 32, 16, false), T0);
    expect(r.add(fragment(whole, 16, 16, false), T0)).toBeNull();
    expect(r.counters.too_big).toBe(1);
  });

  it('gives up on a datagram 15 seconds after its first fragment, however many more arrive', () => {
    const r = new Reassembler();
    const whole = datagram(40);
    r.add(fragment(whole, 0, 16), T0);
    r.add(fragment(whole, 16, 16), T0 + 10_000);
    expect(r.sweep(T0 + 14_999)).toBe(0);
    expect(r.add(fragment(whole, 32, 16), T0 + 15_000)).toBeNull();
    expect(r.counters.timeouts).toBe(1);
    expect(r.size).toBe(1); // the late fragment started a new datagram
  });

  it('keeps fragments of datagrams with different identifications apart', () => {
    const r = new Reassembler();
    const a = datagram(40, 1);
    const b = datagram(40, 2);
    r.add(fragment(a, 0, 24), T0);
    r.add(fragment(b, 24, 24), T0);
    expect(r.size).toBe(2);
    expect(hex(r.add(fragment(a, 24, 24), T0)!)).toBe(hex(a));
    expect(hex(r.add(fragment(b, 0, 24), T0)!)).toBe(hex(b));
  });

  it('evicts the oldest datagram when every slot is taken', () => {
    const r = new Reassembler({ maxDatagrams: 64 });
    for (let ident = 0; ident < 65; ident++) r.add(fragment(datagram(40, ident), 0, 24), T0 + ident);
    expect(r.size).toBe(64);
    expect(r.counters.evicted).toBe(1);
    expect(r.add(fragment(datagram(40, 1), 24, 24), T0 + 100)).not.toBeNull();
    expect(r.add(fragment(datagram(40, 0), 24, 24), T0 + 100)).toBeNull();
  });

  it('evicts the oldest datagram to stay within the byte budget', () => {
    const r = new Reassembler({ maxBytes: 400 });
    r.add(fragment(datagram(400, 1), 0, 200), T0);
    r.add(fragment(datagram(400, 2), 0, 200), T0 + 1);
    expect(r.counters.evicted).toBe(1);
    expect(r.bytes).toBeLessThanOrEqual(400);
  });

  it('drops a datagram that alone exceeds the byte budget', () => {
    const r = new Reassembler({ maxBytes: 300 });
    const whole = datagram(600);
    r.add(fragment(whole, 0, 200), T0);
    expect(r.add(fragment(whole, 200, 200), T0)).toBeNull();
    expect(r.counters.no_memory).toBe(1);
    expect(r.bytes).toBe(0);
  });

  it('never throws on random bytes', () => {
    const r = new Reassembler({ maxDatagrams: 4, maxBytes: 4096 });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 80 }), fc.nat(80), fc.nat(90), fc.nat(100_000), (bytes, l4, end, now) => {
        const pkt = newPacket();
        pkt.bytes = bytes;
        pkt.l4 = l4;
        pkt.end = end;
        const result = r.add(pkt, now);
        expect(result === null || result === pkt || result.end <= 65535).toBe(true);
        expect(r.bytes).toBeGreaterThanOrEqual(0);
      }),
      { numRuns: 2000 },
    );
  });
});
