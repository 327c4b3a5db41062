import { describe, expect, it } from 'vitest';
import { echoRequest, tcpSyn, udpDatagram, type Datagram } from '../../../runtime/messages.ts';
import { l4ChecksumValid } from '../../../runtime/wire/l4-checksum.ts';

const A = 0x0a000001;
const B = 0x0a000002;
const l4 = (d: Datagram) => d.l3 + 20;

describe('l4ChecksumValid', () => {
  const datagrams: [string, Datagram][] = [
    ['TCP', tcpSyn(A, 1000, B, 80)],
    ['UDP', udpDatagram(A, 1000, B, 53, Uint8Array.of(1, 2, 3))],
    ['ICMP', echoRequest(A, B, 7, 1, Uint8Array.of(9, 9))],
  ];

  it.each(datagrams)('accepts a %s datagram as built', (_name, d) => {
    expect(l4ChecksumValid(d.bytes, d.l3, l4(d), d.end)).toBe(true);
  });

  it.each(datagrams)('rejects a %s datagram whose last payload byte changed', (_name, d) => {
    d.bytes[d.end - 1]! ^= 0x40;
    expect(l4ChecksumValid(d.bytes, d.l3, l4(d), d.end)).toBe(false);
  });

  it('covers the pseudo-header: TCP with a changed source address fails', () => {
    const d = tcpSyn(A, 1000, B, 80);
    d.bytes[d.l3 + 15]! ^= 0x01;
    expect(l4ChecksumValid(d.bytes, d.l3, l4(d), d.end)).toBe(false);
  });

  it('passes protocols it has no checksum for', () => {
    const d = udpDatagram(A, 1000, B, 53, Uint8Array.of(1));
    d.bytes[d.l3 + 9] = 47;
    d.bytes[d.end - 1]! ^= 0xff;
    expect(l4ChecksumValid(d.bytes, d.l3, l4(d), d.end)).toBe(true);
  });
});
