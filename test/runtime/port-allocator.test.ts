import fc from 'fast-check';
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

  it('lets NATed flows share a port once every port is taken, never a local socket\'s, and frees it when the last lets go', () => {
    const ports = new PortAllocator(() => 0, 100, 101);
    expect(ports.allocate()).toBe(100); // a local socket's
    expect(ports.allocateShareable()).toBe(101);
    expect(ports.allocateShareable()).toBe(-1);
    expect(ports.shareCandidate()).toBe(101);
    expect(ports.acquireShared(101)).toBe(true);
    expect(ports.acquireShared(100)).toBe(false);
    expect(ports.releaseShared(101)).toBe(true);
    expect(ports.isBound(101)).toBe(true);
    expect(ports.releaseShared(101)).toBe(true);
    expect(ports.isBound(101)).toBe(false);
    expect(ports.releaseShared(101)).toBe(false);
    expect(ports.releaseShared(100)).toBe(false);
    expect(ports.isBound(100)).toBe(true);
    expect(ports.shareCandidate()).toBe(-1);
  });

  it('will not release a NAT-held port as a local socket\'s, nor pick a shared one for local use', () => {
    const ports = new PortAllocator(() => 0, 100, 100);
    expect(ports.allocateShareable()).toBe(100);
    expect(ports.acquireShared(100)).toBe(true);
    expect(ports.release(100)).toBe(false);
    expect(ports.allocate()).toBe(-1);
    expect(ports.releaseShared(100)).toBe(true);
    expect(ports.releaseShared(100)).toBe(true);
    expect(ports.allocate()).toBe(100);
  });

  it('keeps local sockets and NATed flows apart, and frees a port exactly when its last holder lets go', () => {
    const op = fc.oneof(
      fc.constant({ kind: 'local' as const }),
      fc.constant({ kind: 'nat' as const }),
      fc.constant({ kind: 'share' as const }),
      fc.record({ kind: fc.constant('release' as const), pick: fc.nat() }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 80 }), (ops) => {
        const ports = new PortAllocator(() => 0.5, 10, 13);
        const local = new Set<number>();
        const holders = new Map<number, number>(); // NAT port -> flows holding it
        const held: { port: number; nat: boolean }[] = [];
        for (const o of ops) {
          if (o.kind === 'local') {
            const port = ports.allocate();
            if (port < 0) expect(local.size + holders.size).toBe(4);
            else {
              expect(local.has(port) || holders.has(port)).toBe(false);
              local.add(port);
              held.push({ port, nat: false });
            }
          } else if (o.kind === 'nat') {
            const port = ports.allocateShareable();
            if (port >= 0) {
              expect(local.has(port) || holders.has(port)).toBe(false);
              holders.set(port, 1);
              held.push({ port, nat: true });
            }
          } else if (o.kind === 'share') {
            const port = ports.shareCandidate();
            if (port < 0) expect(holders.size).toBe(0);
            else {
              expect(holders.has(port)).toBe(true);
              expect(ports.acquireShared(port)).toBe(true);
              holders.set(port, holders.get(port)! + 1);
              held.push({ port, nat: true });
            }
          } else if (held.length > 0) {
            const [h] = held.splice(o.pick % held.length, 1);
            if (h!.nat) {
              expect(ports.releaseShared(h!.port)).toBe(true);
              const left = holders.get(h!.port)! - 1;
              if (left === 0) holders.delete(h!.port);
              else holders.set(h!.port, left);
            } else {
              expect(ports.release(h!.port)).toBe(true);
              local.delete(h!.port);
            }
          }
          expect(ports.inUse).toBe(local.size + holders.size);
          for (let p = 10; p <= 13; p++) expect(ports.isBound(p)).toBe(local.has(p) || holders.has(p));
        }
      }),
    );
  });
});
