import { Session } from 'node:inspector/promises';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { benchDataplane } from '../../../appliances/bench-dataplane.ts';
import { compileSource } from '../../../compiler/compile.ts';
import type { Ir } from '../../../compiler/ir.ts';
import { parsePacketSpec, type PacketSpec } from '../../../runtime/packet-spec.ts';
import { ROOT } from '../../helpers/examples.ts';

/*
 * The issue's "the steady-state forwarding path allocates nothing per
 * packet", checked with V8's sampling heap profiler (objects later collected
 * included): frames of a forwarded, masqueraded UDP flow cross a booted image
 * and the bytes sampled in the image's runtime are counted.
 */

const CONFIG = `Iface eth0 { index: 0, address: 10.0.0.1, netmask: 255.255.255.0 }
Iface eth1 { index: 1, address: 10.1.0.1, netmask: 255.255.255.0, masquerade: true }
Gateway gw { forward: fw, a: { net: 10.0.0.0, netmask: 255.255.255.0, iface: eth0 }, b: { net: 10.1.0.0, netmask: 255.255.255.0, iface: eth1 } }
Filter::IP fw {
  if (ct.state == established) { accept }
  if (ip.saddr in 172.16.0.0/12) { drop }
  Filter::UDP {
    if (udp.dport == 5353) { accept }
  }
  drop
}`;

interface SampleNode {
  callFrame: { url: string };
  selfSize: number;
  children: SampleNode[];
}

function bytesIn(node: SampleNode, url: string): number {
  return (node.callFrame.url === url ? node.selfSize : 0) + node.children.reduce((sum, c) => sum + bytesIn(c, url), 0);
}

/** Bytes sampled in the image's runtime while a fresh image forwards for `seconds`, and the packets it forwarded. */
async function sampledRun(session: Session, ir: Ir, spec: PacketSpec, runtime: string, seconds: number): Promise<{ bytes: number; packets: number }> {
  await session.post('HeapProfiler.startSampling', { samplingInterval: 512, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true } as never);
  const result = await benchDataplane(ir, 'eth0', [spec], seconds, 1, runtime);
  const { profile } = (await session.post('HeapProfiler.stopSampling')) as unknown as { profile: { head: SampleNode } };
  expect(result.verdicts.accept).toBe(result.packets);
  return { bytes: bytesIn(profile.head, 'nacl-runtime.js'), packets: result.packets };
}

describe('the forwarding path', () => {
  it('allocates nothing per packet once warm', async () => {
    const ir = compileSource(CONFIG, 'fw.nacl').ir!;
    const spec = parsePacketSpec('udp 10.0.0.5:1000 -> 10.1.0.9:5353');
    if (!spec.ok) throw new Error(spec.message);
    const runtime = readFileSync(join(ROOT, 'dist', 'runtime-bundle.js'), 'utf8');
    const session = new Session();
    session.connect();
    await session.post('HeapProfiler.enable');
    // Each run boots an image (allocating as it loads and warms up) and then
    // forwards; the difference between a short and a long run is what the
    // extra packets cost.
    const short = await sampledRun(session, ir, spec.spec, runtime, 0.1);
    // A loaded machine may forward little in 0.8 s (the bench looks at the clock every 4096 packets): run longer then.
    let long = await sampledRun(session, ir, spec.spec, runtime, 0.8);
    for (let seconds = 2; long.packets - short.packets <= 100_000 && seconds <= 8; seconds *= 2) long = await sampledRun(session, ir, spec.spec, runtime, seconds);
    session.disconnect();
    expect(long.packets - short.packets).toBeGreaterThan(100_000);
    // The smallest object is 16 bytes: even one per four packets fails this.
    // (What the two boots allocate varies by some 100 KB, under 1.5 B/packet here.)
    expect((long.bytes - short.bytes) / (long.packets - short.packets)).toBeLessThan(4);
  });
});
