import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeTcpOptions, parseTcpOptions, type TcpOptions } from '../../../runtime/wire/tcp-options.ts';
import { tcpOptions } from '../../../runtime/wire/tcp.ts';
import { hex, HTTP_CAP_SYN, LINUX_SYN, LINUX_SYNACK } from './frames.ts';

const TCP = 34;

function parse(bytes: Uint8Array): TcpOptions | string {
  return parseTcpOptions(bytes, 0, bytes.length);
}

describe('TCP options', () => {
  it('reads MSS, SACK-permitted, timestamps and window scale from a captured Linux SYN', () => {
    expect(parseTcpOptions(LINUX_SYN, TCP + 20, LINUX_SYN.length)).toEqual({
      mss: 1460,
      sackPermitted: true,
      timestamp: { value: 0x9a3c1f27, echo: 0 },
      windowScale: 7,
    });
  });

  it('reads MSS and SACK-permitted after two NOPs from the http.cap SYN', () => {
    expect(parse(tcpOptions(HTTP_CAP_SYN, TCP))).toEqual({ mss: 1460, sackPermitted: true });
  });

  it('encodes a SYN exactly as Linux lays it out', () => {
    expect(encodeTcpOptions({ mss: 1460, sackPermitted: true, timestamp: { value: 0x9a3c1f27, echo: 0 }, windowScale: 7 })).toEqual(
      tcpOptions(LINUX_SYN, TCP),
    );
  });

  it('encodes a SYN-ACK exactly as Linux lays it out', () => {
    expect(encodeTcpOptions({ mss: 1460, sackPermitted: true, timestamp: { value: 0x11223344, echo: 0x9a3c1f27 }, windowScale: 9 })).toEqual(
      tcpOptions(LINUX_SYNACK, TCP),
    );
  });

  it('pads SACK-permitted with two NOPs when there are no timestamps, as Linux does', () => {
    expect(encodeTcpOptions({ mss: 1460, sackPermitted: true, windowScale: 7 })).toEqual(hex('0204 05b4 0101 0402 0103 0307'));
  });

  it('pads timestamps with two NOPs when SACK is not offered', () => {
    expect(encodeTcpOptions({ timestamp: { value: 1, echo: 2 } })).toEqual(hex('0101 080a 0000 0001 0000 0002'));
  });

  it('reads and writes SACK blocks', () => {
    const options = { sackBlocks: [{ left: 1000, right: 2000 }, { left: 3000, right: 4000 }] };
    const bytes = encodeTcpOptions(options);
    expect(bytes).toEqual(hex('0101 0512 0000 03e8 0000 07d0 0000 0bb8 0000 0fa0'));
    expect(parse(bytes as Uint8Array)).toEqual(options);
  });

  it('refuses to encode more SACK blocks than fit', () => {
    const block = { left: 1, right: 2 };
    expect(encodeTcpOptions({ mss: 1460, timestamp: { value: 1, echo: 2 }, sackBlocks: [block, block, block] })).toBe('field-out-of-range');
  });

  it('round-trips any set of options through encode and parse', () => {
    const u32 = fc.nat({ max: 0xffffffff });
    const options = fc.record(
      {
        mss: fc.nat({ max: 0xffff }),
        windowScale: fc.nat({ max: 14 }),
        sackPermitted: fc.constant(true),
        timestamp: fc.record({ value: u32, echo: u32 }),
        sackBlocks: fc.array(fc.record({ left: u32, right: u32 }), { minLength: 1, maxLength: 1 }),
      },
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(options, (o) => {
        const bytes = encodeTcpOptions(o);
        if (typeof bytes === 'string') throw new Error(bytes);
        expect(parse(bytes)).toEqual(o);
      }),
    );
  });

  it('stops at End of Option List', () => {
    expect(parse(hex('0000 0204 05b4'))).toEqual({});
  });

  it('skips an unknown option by its length', () => {
    expect(parse(hex('1e04 abcd 0204 05b4'))).toEqual({ mss: 0x05b4 });
  });

  it.each([
    ['a length below 2', '0201 05b4'],
    ['a missing length byte', '0101 0102'],
    ['a length running past the header', '0204 05'],
    ['an MSS of the wrong length', '0203 0500'],
    ['a window scale of the wrong length', '0304 0700'],
    ['SACK-permitted of the wrong length', '0403 0000'],
    ['timestamps of the wrong length', '0806 0000 0001'],
    ['a SACK without a whole block', '0506 0000 0001'],
  ])('rejects %s', (_name, bytes) => {
    expect(parse(hex(bytes))).toBe('bad-option');
  });
});
