import { describe, expect, it } from 'vitest';
import { freshBuffer } from '../../runtime/fresh-buffer.ts';

describe('fresh packet buffers', () => {
  it('gives zeroed buffers of the asked length that never overlap, each on an 8-byte boundary', () => {
    const buffers = Array.from({ length: 200 }, (_, i) => freshBuffer(1 + ((i * 37) % 1600)));
    for (const [i, b] of buffers.entries()) {
      expect(b.length).toBe(1 + ((i * 37) % 1600));
      expect(b.every((x) => x === 0)).toBe(true);
      expect(b.byteOffset % 8).toBe(0);
    }
    // Fill each with its own mark: no buffer's bytes may change another's.
    buffers.forEach((b, i) => b.fill(i & 0xff));
    buffers.forEach((b, i) => expect(b.every((x) => x === (i & 0xff))).toBe(true));
  });

  it('gives a large buffer a store of its own', () => {
    const big = freshBuffer(20_000);
    expect(big.byteOffset).toBe(0);
    expect(big.buffer.byteLength).toBe(20_000);
  });
});
