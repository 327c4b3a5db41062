import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CtInfo, loadFrame, newPacket, packetFromDatagram, packetFromFrame } from '../../runtime/packet.ts';
import { EtherType, setEthEtherType } from '../../runtime/wire/ethernet.ts';
import { L3, tcp, udp } from './build.ts';

/** The frame with an 802.1Q tag (VID 7) inserted after the MACs. */
function tagged(frame: Uint8Array, innerTpid: number = EtherType.Ipv4): Uint8Array {
  const out = new Uint8Array(frame.length + 4);
  out.set(frame.subarray(0, 12), 0);
  setEthEtherType(out, 0, EtherType.Vlan);
  out.set([0x00, 0x07, innerTpid >>> 8, innerTpid & 0xff], 14);
  out.set(frame.subarray(14), 18);
  return out;
}

describe('Packet views', () => {
  it('finds the IPv4 and transport headers of an untagged frame', () => {
    const frame = tcp('10.0.0.1', 1234, '10.0.0.2', 80).bytes;
    const pkt = packetFromFrame(frame);
    expect(pkt).toMatchObject({ l3: 14, l4: 34, end: 14 + 40, ctInfo: CtInfo.None });
  });

  it('skips one 802.1Q tag', () => {
    const frame = tagged(tcp('10.0.0.1', 1234, '10.0.0.2', 80).bytes);
    expect(packetFromFrame(frame)).toMatchObject({ l3: 18, l4: 38, end: 18 + 40 });
  });

  it('reports a stacked VLAN tag instead of reading past it', () => {
    const frame = tagged(tcp('10.0.0.1', 1234, '10.0.0.2', 80).bytes, EtherType.Vlan);
    expect(packetFromFrame(frame)).toBe('stacked-tag');
  });

  it('reports a frame that does not carry IPv4', () => {
    const frame = tcp('10.0.0.1', 1234, '10.0.0.2', 80).bytes.slice();
    setEthEtherType(frame, 0, EtherType.Arp);
    expect(packetFromFrame(frame)).toBe('not-ipv4');
  });

  it('ends the datagram at its total length, not at the link padding', () => {
    const short = udp('10.0.0.1', 1, '10.0.0.2', 2, { payload: new Uint8Array(0) }).bytes;
    const padded = new Uint8Array(60);
    padded.set(short);
    expect(packetFromFrame(padded)).toMatchObject({ end: 14 + 28 });
  });

  it('rejects a header with a wrong checksum unless told not to verify', () => {
    const frame = tcp('10.0.0.1', 1234, '10.0.0.2', 80).bytes.slice();
    frame[L3 + 10]! ^= 0xff;
    expect(packetFromFrame(frame)).toBe('bad-checksum');
    expect(packetFromFrame(frame, frame.length, false)).toMatchObject({ l3: 14 });
  });

  it('reads a bare datagram at any offset', () => {
    const datagram = tcp('10.0.0.1', 1234, '10.0.0.2', 80).bytes.subarray(L3);
    expect(packetFromDatagram(datagram)).toMatchObject({ l3: 0, l4: 20, end: 40 });
  });

  it('refills one view object for every frame and resets the conntrack info', () => {
    const pkt = newPacket();
    pkt.ctInfo = CtInfo.Reply;
    expect(loadFrame(pkt, tcp('10.0.0.1', 1, '10.0.0.2', 2).bytes)).toBeUndefined();
    expect(pkt.ctInfo).toBe(CtInfo.None);
    expect(loadFrame(pkt, new Uint8Array(10))).toBe('truncated');
    expect(pkt).toMatchObject({ l3: 0, l4: 0, end: 0 });
  });

  it('never throws on arbitrary bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 120 }), fc.nat(130), (bytes, length) => {
        const result = packetFromFrame(bytes, length, false);
        if (typeof result !== 'string') {
          expect(result.end).toBeLessThanOrEqual(bytes.length);
          expect(result.l4).toBeLessThanOrEqual(result.end);
        }
      }),
    );
  });
});
