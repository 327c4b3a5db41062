import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  adjustTcpChecksumForAddress,
  checkTcp,
  fillTcpChecksum,
  rewriteTcpSrcPort,
  setTcpAck,
  setTcpDstPort,
  setTcpFlags,
  setTcpHeaderLen,
  setTcpNs,
  setTcpReserved,
  setTcpSeq,
  setTcpSrcPort,
  setTcpUrgent,
  setTcpWindow,
  tcpAck,
  tcpChecksum,
  tcpChecksumIsValid,
  tcpDstPort,
  TcpFlag,
  tcpFlags,
  tcpHeaderLen,
  tcpNs,
  tcpOptions,
  tcpPayloadOffset,
  TcpRepr,
  tcpReserved,
  tcpSeq,
  tcpSrcPort,
  tcpUrgent,
  tcpWindow,
} from '../../../runtime/wire/tcp.ts';
import { hex, HTTP_CAP_SYN, ip, LINUX_SYN, LINUX_SYNACK } from './frames.ts';

const TCP = 34;
const CLIENT = ip('10.0.2.15');
const SERVER = ip('93.184.216.34');
const XP_CLIENT = ip('145.254.160.237');
const XP_SERVER = ip('65.208.228.223');

function withByte(frame: Uint8Array, at: number, value: number): Uint8Array {
  const copy = frame.slice();
  copy[at] = value;
  return copy;
}

describe('TCP header', () => {
  it('reads every field of the SYN in Wireshark\'s http.cap', () => {
    expect(checkTcp(HTTP_CAP_SYN, TCP)).toBeUndefined();
    expect(tcpSrcPort(HTTP_CAP_SYN, TCP)).toBe(3372);
    expect(tcpDstPort(HTTP_CAP_SYN, TCP)).toBe(80);
    expect(tcpSeq(HTTP_CAP_SYN, TCP)).toBe(0x38affe13);
    expect(tcpAck(HTTP_CAP_SYN, TCP)).toBe(0);
    expect(tcpHeaderLen(HTTP_CAP_SYN, TCP)).toBe(28);
    expect(tcpReserved(HTTP_CAP_SYN, TCP)).toBe(0);
    expect(tcpNs(HTTP_CAP_SYN, TCP)).toBe(false);
    expect(tcpFlags(HTTP_CAP_SYN, TCP)).toBe(TcpFlag.Syn);
    expect(tcpWindow(HTTP_CAP_SYN, TCP)).toBe(8760);
    expect(tcpChecksum(HTTP_CAP_SYN, TCP)).toBe(0xc30c);
    expect(tcpUrgent(HTTP_CAP_SYN, TCP)).toBe(0);
    expect(tcpOptions(HTTP_CAP_SYN, TCP)).toEqual(hex('0204 05b4 0101 0402'));
    expect(tcpPayloadOffset(HTTP_CAP_SYN, TCP)).toBe(HTTP_CAP_SYN.length);
  });

  it('verifies the checksum of the http.cap SYN against its pseudo-header', () => {
    expect(tcpChecksumIsValid(HTTP_CAP_SYN, TCP, 28, XP_CLIENT, XP_SERVER)).toBe(true);
    expect(tcpChecksumIsValid(HTTP_CAP_SYN, TCP, 28, XP_SERVER, XP_CLIENT)).toBe(true); // the sum is symmetric
    expect(tcpChecksumIsValid(HTTP_CAP_SYN, TCP, 28, XP_CLIENT, XP_CLIENT)).toBe(false);
  });

  it('reads the flags and acknowledgement of a captured Linux SYN-ACK', () => {
    expect(tcpFlags(LINUX_SYNACK, TCP)).toBe(TcpFlag.Syn | TcpFlag.Ack);
    expect(tcpAck(LINUX_SYNACK, TCP)).toBe(tcpSeq(LINUX_SYN, TCP) + 1);
    expect(tcpChecksumIsValid(LINUX_SYNACK, TCP, 40, SERVER, CLIENT)).toBe(true);
  });

  it('writes the captured Linux SYN with its setters', () => {
    const bytes = new Uint8Array(40);
    bytes.set(tcpOptions(LINUX_SYN, TCP), 20);
    setTcpSrcPort(bytes, 0, 45678);
    setTcpDstPort(bytes, 0, 80);
    setTcpSeq(bytes, 0, 0x3b9aca00);
    setTcpAck(bytes, 0, 0);
    setTcpHeaderLen(bytes, 0, 40);
    setTcpFlags(bytes, 0, TcpFlag.Syn);
    setTcpWindow(bytes, 0, 64240);
    setTcpUrgent(bytes, 0, 0);
    fillTcpChecksum(bytes, 0, 40, CLIENT, SERVER);
    expect(bytes).toEqual(LINUX_SYN.subarray(TCP));
  });

  it('keeps the NS bit and the reserved bits next to the data offset', () => {
    const bytes = LINUX_SYN.slice(TCP);
    setTcpNs(bytes, 0, true);
    expect(bytes[12]).toBe(0xa1);
    expect(tcpReserved(bytes, 0)).toBe(1);
    setTcpReserved(bytes, 0, 0x0e);
    expect(tcpNs(bytes, 0)).toBe(false);
    expect(tcpHeaderLen(bytes, 0)).toBe(40);
    setTcpHeaderLen(bytes, 0, 20);
    expect(tcpReserved(bytes, 0)).toBe(0x0e);
  });

  it('parses the http.cap SYN', () => {
    expect(TcpRepr.parse(HTTP_CAP_SYN, TCP, HTTP_CAP_SYN.length, XP_CLIENT, XP_SERVER)).toEqual({
      srcPort: 3372,
      dstPort: 80,
      seq: 0x38affe13,
      ack: 0,
      flags: TcpFlag.Syn,
      window: 8760,
      reserved: 0,
      urgent: 0,
      options: hex('0204 05b4 0101 0402'),
      payload: new Uint8Array(0),
    });
  });

  it('copies options and payload, or lends views of the segment when asked to borrow', () => {
    const bytes = HTTP_CAP_SYN.slice();
    const copied = TcpRepr.parse(bytes, TCP, bytes.length, XP_CLIENT, XP_SERVER) as TcpRepr;
    const borrowed = TcpRepr.parse(bytes, TCP, bytes.length, XP_CLIENT, XP_SERVER, true, true) as TcpRepr;
    expect(borrowed).toEqual(copied);
    expect(borrowed.options!.buffer).toBe(bytes.buffer);
    expect(copied.options!.buffer).not.toBe(bytes.buffer);
    bytes[TCP + 20] = 3; // the first option's kind
    expect(borrowed.options![0]).toBe(3);
    expect(copied.options![0]).toBe(2);
  });

  it('emits the http.cap SYN byte for byte', () => {
    const repr: TcpRepr = {
      srcPort: 3372,
      dstPort: 80,
      seq: 0x38affe13,
      ack: 0,
      flags: TcpFlag.Syn,
      window: 8760,
      options: hex('0204 05b4 0101 0402'),
      payload: new Uint8Array(0),
    };
    const bytes = new Uint8Array(TcpRepr.bufferLen(repr));
    expect(TcpRepr.emit(repr, bytes, 0, XP_CLIENT, XP_SERVER)).toBeUndefined();
    expect(bytes).toEqual(HTTP_CAP_SYN.subarray(TCP));
  });

  it('emits the captured Linux SYN-ACK byte for byte', () => {
    const repr = TcpRepr.parse(LINUX_SYNACK, TCP, LINUX_SYNACK.length, SERVER, CLIENT);
    if (typeof repr === 'string') throw new Error(repr);
    const bytes = new Uint8Array(TcpRepr.bufferLen(repr));
    expect(TcpRepr.emit(repr, bytes, 0, SERVER, CLIENT)).toBeUndefined();
    expect(bytes).toEqual(LINUX_SYNACK.subarray(TCP));
  });

  it('round-trips any representation through emit and parse', () => {
    const repr = fc.record({
      srcPort: fc.integer({ min: 1, max: 0xffff }),
      dstPort: fc.integer({ min: 1, max: 0xffff }),
      seq: fc.nat({ max: 0xffffffff }),
      ack: fc.nat({ max: 0xffffffff }),
      flags: fc.nat({ max: 0xff }),
      window: fc.nat({ max: 0xffff }),
      reserved: fc.nat({ max: 0x0f }),
      urgent: fc.nat({ max: 0xffff }),
      options: fc.nat({ max: 10 }).chain((words) => fc.uint8Array({ minLength: words * 4, maxLength: words * 4 })),
      payload: fc.uint8Array({ maxLength: 100 }),
    });
    fc.assert(
      fc.property(repr, fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), (r, src, dst) => {
        const bytes = new Uint8Array(TcpRepr.bufferLen(r));
        TcpRepr.emit(r, bytes, 0, src, dst);
        expect(TcpRepr.parse(bytes, 0, bytes.length, src, dst)).toEqual(r);
      }),
    );
  });
});

describe('TCP checksum under NAT', () => {
  it('stays right when the source port and address are rewritten', () => {
    const bytes = LINUX_SYN.slice(TCP);
    const public_ = ip('203.0.113.7');
    rewriteTcpSrcPort(bytes, 0, 61000);
    adjustTcpChecksumForAddress(bytes, 0, CLIENT, public_);
    expect(tcpChecksumIsValid(bytes, 0, 40, public_, SERVER)).toBe(true);
  });
});

describe('TCP validation', () => {
  it('reports fewer than 20 bytes as truncated', () => {
    expect(checkTcp(LINUX_SYN, TCP, TCP + 19)).toBe('truncated');
  });

  it('rejects a data offset below 5', () => {
    expect(checkTcp(withByte(LINUX_SYN, TCP + 12, 0x40), TCP)).toBe('bad-header-length');
  });

  it('rejects a header longer than the segment', () => {
    expect(checkTcp(withByte(LINUX_SYN, TCP + 12, 0xb0), TCP)).toBe('bad-header-length');
    expect(checkTcp(LINUX_SYN, TCP, TCP + 36)).toBe('bad-header-length');
  });

  it('rejects a wrong checksum', () => {
    expect(TcpRepr.parse(withByte(LINUX_SYN, TCP + 15, 0xf1), TCP, LINUX_SYN.length, CLIENT, SERVER)).toBe('bad-checksum');
  });

  it('rejects a zero port', () => {
    const bytes = LINUX_SYN.slice(TCP);
    setTcpDstPort(bytes, 0, 0);
    fillTcpChecksum(bytes, 0, bytes.length, CLIENT, SERVER);
    expect(TcpRepr.parse(bytes, 0, bytes.length, CLIENT, SERVER)).toBe('bad-port');
  });

  it('skips the checksum when asked to', () => {
    expect(TcpRepr.parse(withByte(LINUX_SYN, TCP + 15, 0xf1), TCP, LINUX_SYN.length, CLIENT, SERVER, false)).toMatchObject({ dstPort: 80 });
  });

  it('refuses to emit more than 40 bytes of options', () => {
    const options = new Uint8Array(41);
    const repr: TcpRepr = { srcPort: 1, dstPort: 2, seq: 0, ack: 0, flags: 0, window: 0, options, payload: new Uint8Array(0) };
    expect(TcpRepr.emit(repr, new Uint8Array(100), 0, CLIENT, SERVER)).toBe('field-out-of-range');
  });
});
