import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DhcpMessageType, DhcpRepr, dhcpRequestRepr, type DhcpRepr as Dhcp } from '../../../runtime/wire/dhcp.ts';
import { hex, ip } from './frames.ts';

// A DHCPOFFER as scapy 2.5 builds it: 192.168.1.100 for 00:05:3c:04:8d:59, broadcast flag set.
const SCAPY_OFFER = hex(
  '020106003903f3260000800000000000c0a80164c0a801010000000000053c048d59' +
    '00'.repeat(202) +
    '638253633501020104ffffff000304c0a801013304000151803604c0a80101060809070a0f09070a100f0b6578616d706c652e6f7267ff',
);
const MAC = Uint8Array.of(0x00, 0x05, 0x3c, 0x04, 0x8d, 0x59);

function parsed(bytes: Uint8Array): Dhcp {
  const r = DhcpRepr.parse(bytes);
  if (typeof r === 'string') throw new Error(r);
  return r;
}

describe('DHCP messages', () => {
  it("reads every field and option of scapy's OFFER", () => {
    const r = parsed(SCAPY_OFFER);
    expect(r).toMatchObject({
      op: 2,
      xid: 0x3903f326,
      broadcast: true,
      yiaddr: ip('192.168.1.100'),
      siaddr: ip('192.168.1.1'),
      messageType: DhcpMessageType.Offer,
      subnetMask: ip('255.255.255.0'),
      routers: [ip('192.168.1.1')],
      leaseTime: 86400,
      serverId: ip('192.168.1.1'),
      dnsServers: [ip('9.7.10.15'), ip('9.7.10.16')],
      domainName: 'example.org',
    });
    expect(r.chaddr).toEqual(MAC);
  });

  it('emits at least the 300 bytes of a BOOTP message, with the magic cookie and options', () => {
    const r = dhcpRequestRepr(DhcpMessageType.Discover, 0x1234, MAC);
    r.broadcast = true;
    r.clientId = Uint8Array.of(1, ...MAC);
    r.parameterRequestList = [1, 3, 6, 15];
    const bytes = DhcpRepr.emit(r);
    expect(bytes.length).toBe(300);
    expect([...bytes.subarray(236, 240)]).toEqual([0x63, 0x82, 0x53, 0x63]);
    expect([...bytes.subarray(240, 243)]).toEqual([53, 1, 1]);
    expect(parsed(bytes)).toEqual(r);
  });

  it('round-trips any message through emit and parse', () => {
    const addr = fc.integer({ min: 0, max: 0xffffffff });
    const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: null });
    const repr: fc.Arbitrary<Dhcp> = fc.record({
      op: fc.constantFrom(1 as const, 2 as const),
      xid: addr,
      secs: fc.integer({ min: 0, max: 0xffff }),
      broadcast: fc.boolean(),
      ciaddr: addr,
      yiaddr: addr,
      siaddr: addr,
      giaddr: addr,
      chaddr: fc.uint8Array({ minLength: 6, maxLength: 6 }),
      messageType: fc.integer({ min: 1, max: 8 }),
      subnetMask: maybe(addr),
      routers: fc.array(addr, { maxLength: 4 }),
      dnsServers: fc.array(addr, { maxLength: 4 }),
      domainName: maybe(fc.stringMatching(/^[a-z0-9.-]{1,40}$/)),
      requestedIp: maybe(addr),
      leaseTime: maybe(addr),
      renewalTime: maybe(addr),
      rebindingTime: maybe(addr),
      serverId: maybe(addr),
      clientId: maybe(fc.uint8Array({ minLength: 2, maxLength: 16 })),
      parameterRequestList: fc.array(fc.integer({ min: 1, max: 254 }), { maxLength: 8 }),
    });
    fc.assert(
      fc.property(repr, (r) => {
        expect(parsed(DhcpRepr.emit(r))).toEqual(r);
      }),
    );
  });

  it('rejects a message shorter than the header and cookie', () => {
    expect(DhcpRepr.parse(SCAPY_OFFER.subarray(0, 239))).toBe('truncated');
  });

  it('rejects a wrong magic cookie, op or hardware type', () => {
    const cookie = SCAPY_OFFER.slice();
    cookie[236] = 0;
    expect(DhcpRepr.parse(cookie)).toBe('bad-magic-cookie');
    const op = SCAPY_OFFER.slice();
    op[0] = 3;
    expect(DhcpRepr.parse(op)).toBe('bad-op');
    const htype = SCAPY_OFFER.slice();
    htype[2] = 16;
    expect(DhcpRepr.parse(htype)).toBe('bad-hardware-type');
  });

  it('rejects an option running past the end, and a fixed-size option of the wrong size', () => {
    // The domain name option claims 11 bytes; cut the message inside it.
    expect(DhcpRepr.parse(SCAPY_OFFER.subarray(0, SCAPY_OFFER.length - 5))).toBe('truncated-option');
    const mask = SCAPY_OFFER.slice();
    mask[244] = 3; // option 1 (subnet mask) with length 3
    expect(DhcpRepr.parse(mask)).toBe('bad-option-length');
  });

  it('rejects a message without a DHCP message type (plain BOOTP)', () => {
    const bootp = SCAPY_OFFER.slice();
    bootp[240] = 0; // the message-type option becomes pads
    bootp[241] = 0;
    bootp[242] = 0;
    expect(DhcpRepr.parse(bootp)).toBe('no-message-type');
  });

  it('never throws on random or mutated bytes', () => {
    const mutated = fc
      .array(fc.tuple(fc.nat(SCAPY_OFFER.length - 1), fc.integer({ min: 0, max: 255 })), { maxLength: 8 })
      .chain((edits) =>
        fc.nat(SCAPY_OFFER.length).map((cut) => {
          const b = SCAPY_OFFER.slice(0, Math.max(cut, 200));
          for (const [at, v] of edits) if (at < b.length) b[at] = v;
          return b;
        }),
      );
    fc.assert(
      fc.property(fc.oneof(mutated, fc.uint8Array({ maxLength: 600 })), (bytes) => {
        const r = DhcpRepr.parse(bytes);
        expect(typeof r === 'string' || r.messageType > 0).toBe(true);
      }),
      { numRuns: 2000 },
    );
  });
});
