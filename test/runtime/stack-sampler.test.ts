import { describe, expect, it } from 'vitest';
import { countSamples, StackSampler, type SampledProfile } from '../../runtime/stack-sampler.ts';

const frame = (functionName: string, url: string, lineNumber = 0, columnNumber = 0) => ({ functionName, url, lineNumber, columnNumber });

describe('counting stack samples', () => {
  it('counts each sample against its function, most first, named with the file it is defined in', () => {
    const profile: SampledProfile = {
      nodes: [
        { id: 1, callFrame: frame('(root)', '') },
        { id: 2, callFrame: frame('(idle)', '') },
        { id: 3, callFrame: frame('checksumSum', 'nacl-runtime.js', 2, 100) },
        { id: 4, callFrame: frame('filter_in', 'nacl-generated.js', 5, 3) },
        // The same function reached along another path: another node, the same entry.
        { id: 5, callFrame: frame('checksumSum', 'nacl-runtime.js', 2, 100) },
      ],
      samples: [2, 3, 4, 5, 3, 2, 3],
    };
    expect(countSamples(profile)).toEqual({
      total: 7,
      functions: [
        { name: 'checksumSum (nacl-runtime.js)', count: 4 },
        { name: '(idle)', count: 2 },
        { name: 'filter_in (nacl-generated.js)', count: 1 },
      ],
    });
  });

  it('keeps two functions of one name apart, names native and anonymous code, and drops file paths', () => {
    const profile: SampledProfile = {
      nodes: [
        { id: 1, callFrame: frame('receive', 'nacl-runtime.js', 2, 10) },
        { id: 2, callFrame: frame('receive', 'nacl-runtime.js', 2, 900) },
        { id: 3, callFrame: frame('', '') },
        { id: 4, callFrame: frame('', 'file:///usr/lib/nacl/dist/chunk-1.js', 7, 1) },
      ],
      samples: [1, 2, 2, 3, 4, 99],
    };
    expect(countSamples(profile).functions).toEqual([
      { name: 'receive (nacl-runtime.js)', count: 2 },
      { name: '(anonymous) (chunk-1.js)', count: 1 },
      { name: '(native code)', count: 1 },
      { name: 'receive (nacl-runtime.js)', count: 1 },
    ]);
    // A sample of a node the profile does not list is not counted.
    expect(countSamples(profile).total).toBe(5);
  });

  it('gives no functions for a profile without samples', () => {
    expect(countSamples({ nodes: [] })).toEqual({ total: 0, functions: [] });
  });
});

describe('the stack sampler of this process', () => {
  it('finds the function that kept the process busy, and counts afresh after each take', () => {
    const sampler = StackSampler.start();
    expect(sampler).toBeDefined();
    try {
      const busyWithSquareRoots = (ms: number) => {
        let x = 0;
        const end = performance.now() + ms;
        while (performance.now() < end) for (let i = 0; i < 1000; i++) x += Math.sqrt(i);
        return x;
      };
      busyWithSquareRoots(200);
      const first = sampler!.take();
      expect(first.total).toBeGreaterThan(20);
      expect(first.functions.find((f) => f.name.startsWith('busyWithSquareRoots '))?.count).toBeGreaterThan(10);
      const second = sampler!.take();
      expect(second.total).toBeLessThan(first.total);
    } finally {
      sampler?.stop();
    }
  });
});
