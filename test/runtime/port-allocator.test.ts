import { describe, expect, it } from 'vitest';
import { EPHEMERAL_FIRST, EPHEMERAL_LAST, PortAllocator } from '../../runtime/port-allocator.ts';

describe('PortAllocator', () => {
  it('covers the dynamic range 49152-65535', () => {
    const ports = new PortAllocator(() => 0);
    expect(ports.size).toBe(EPHEMERAL_LAST - EPHEMERAL_FIRST + 1);
    expect(ports.allocate()).toBe(49152);
  });

  it('starts at a random port and continues sequentially', () => {
    const ports = new PortAllocator(() => 0.5);
    expect([ports.allocate(), ports.allocate(), ports.allocate()]).toEqual([57344, 57345, 57346]);
  });

  it('wraps around from the last port to the first', () => {
    const ports = new PortAllocator(() => 0.99999999);
    expect([ports.allocate(), ports.allocate()]).toEqual([65535, 49152]);
  });

  it('skips ports that are bound', () => {
    const ports = new PortAllocator(() => 0);
    expect(ports.bind(49153)).toBe(true);
    expect([ports.allocate(), ports.allocate()]).toEqual([49152, 49154]);
  });

  it('returns -1 when every port is bound, and a port again after a release', () => {
    const ports = new PortAllocator(() => 0, 100, 102);
    expect([ports.allocate(), ports.allocate(), ports.allocate(), ports.allocate()]).toEqual([100, 101, 102, -1]);
    expect(ports.release(101)).toBe(true);
    expect(ports.allocate()).toBe(101);
  });

  it('ignores releasing a port that is not bound or not in the range', () => {
    const ports = new PortAllocator(() => 0);
    expect(ports.release(50000)).toBe(false);
    expect(ports.release(80)).toBe(false);
    expect(ports.bind(80)).toBe(false);
    expect(ports.inUse).toBe(0);
  });
});
