import { createSocket, type Socket } from 'node:dgram';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Nic } from '../../../runtime/drivers/nic.ts';
import { openUdpNic, type UdpNic } from '../../../runtime/drivers/udp.ts';

const HOST = '127.0.0.1';
const opened: { close(): unknown }[] = [];

afterEach(async () => {
  await Promise.all(opened.splice(0).map((x) => x.close()));
});

async function nic(localPort: number, remotePort: number): Promise<UdpNic> {
  const n = await openUdpNic(localPort, HOST, remotePort, { localAddress: HOST });
  opened.push(n);
  return n;
}

/** A plain socket, standing in for QEMU's end of `-netdev socket,udp=`. */
async function peer(port = 0): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(port, HOST, () => resolve());
  });
  opened.push({ close: () => new Promise<void>((resolve) => s.close(() => resolve())) });
  return s;
}

/** Two ports that were free a moment ago. */
async function freePorts(): Promise<[number, number]> {
  const [a, b] = await Promise.all([peer(), peer()]);
  const ports: [number, number] = [a.address().port, b.address().port];
  await Promise.all(opened.splice(0).map((x) => x.close()));
  return ports;
}

function collect(n: Nic): Uint8Array[][] {
  const batches: Uint8Array[][] = [];
  n.onReceive((frames) => batches.push(frames.map((f) => Uint8Array.from(f))));
  return batches;
}

function frame(length: number, seed: number): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (i * 7 + seed) & 0xff);
}

describe('udp NIC', () => {
  it('exchanges frames both ways byte-exact, one frame per datagram', async () => {
    const [pa, pb] = await freePorts();
    const a = await nic(pa, pb);
    const b = await nic(pb, pa);
    const atA = collect(a);
    const atB = collect(b);
    const toB = [frame(60, 1), frame(1514, 2), frame(14, 3)];
    const toA = [frame(64, 4), frame(900, 5)];
    a.send(toB);
    b.send(toA);
    await vi.waitFor(() => expect(atB.flat()).toHaveLength(3));
    await vi.waitFor(() => expect(atA.flat()).toHaveLength(2));
    expect(atB.flat()).toEqual(toB);
    expect(atA.flat()).toEqual(toA);
  });

  it('counts frames and bytes sent and received', async () => {
    const [pa, pb] = await freePorts();
    const a = await nic(pa, pb);
    const b = await nic(pb, pa);
    const atB = collect(b);
    a.send([frame(60, 1), frame(100, 2)]);
    await vi.waitFor(() => expect(atB.flat()).toHaveLength(2));
    await vi.waitFor(() => expect(a.counters).toMatchObject({ tx_frames: 2, tx_bytes: 160, tx_dropped: 0, tx_errors: 0 }));
    expect(b.counters).toMatchObject({ rx_frames: 2, rx_bytes: 160 });
  });

  it('speaks the QEMU format: a bare frame per datagram, to and from the configured peer', async () => {
    const qemu = await peer();
    const n = await nic(0, qemu.address().port);
    const got = collect(n);
    const datagrams: Buffer[] = [];
    qemu.on('message', (m) => datagrams.push(m));
    n.send([frame(60, 9)]);
    await vi.waitFor(() => expect(datagrams).toHaveLength(1));
    expect(new Uint8Array(datagrams[0]!)).toEqual(frame(60, 9));
    qemu.send(frame(70, 3), n.localPort, HOST);
    await vi.waitFor(() => expect(got.flat()).toHaveLength(1));
    expect(got[0]![0]).toEqual(frame(70, 3));
  });

  it('sends a copy, so the caller may reuse its buffer at once', async () => {
    const qemu = await peer();
    const n = await nic(0, qemu.address().port);
    const datagrams: Buffer[] = [];
    qemu.on('message', (m) => datagrams.push(m));
    const buf = frame(60, 1);
    n.send([buf]);
    buf.fill(0);
    await vi.waitFor(() => expect(datagrams).toHaveLength(1));
    expect(new Uint8Array(datagrams[0]!)).toEqual(frame(60, 1));
  });

  it('ignores datagrams from anyone but the peer', async () => {
    const qemu = await peer();
    const stranger = await peer();
    const n = await nic(0, qemu.address().port);
    const got = collect(n);
    await new Promise((resolve) => stranger.send(frame(60, 1), n.localPort, HOST, resolve));
    await new Promise((resolve) => qemu.send(frame(60, 2), n.localPort, HOST, resolve));
    await vi.waitFor(() => expect(n.counters.rx_frames).toBe(1));
    expect(got.flat()).toEqual([frame(60, 2)]);
  });

  it('drops and counts datagrams too short to be an Ethernet frame', async () => {
    const qemu = await peer();
    const n = await nic(0, qemu.address().port);
    const got = collect(n);
    qemu.send(new Uint8Array(13), n.localPort, HOST);
    qemu.send(frame(14, 1), n.localPort, HOST);
    await vi.waitFor(() => expect(n.counters.rx_frames).toBe(1));
    expect(n.counters.rx_dropped_short).toBe(1);
    expect(got.flat()).toEqual([frame(14, 1)]);
  });

  it('keeps running and counts errors while the peer is not listening', async () => {
    const [pa, pb] = await freePorts();
    const a = await nic(pa, pb);
    for (let i = 0; i < 3; i++) {
      a.send([frame(60, i)]);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    await vi.waitFor(() => expect(a.counters.tx_frames + a.counters.tx_errors + a.counters.socket_errors).toBeGreaterThanOrEqual(3));
    const b = await nic(pb, pa);
    const atB = collect(b);
    await vi.waitFor(() => {
      a.send([frame(60, 7)]);
      expect(atB.flat().length).toBeGreaterThan(0);
    });
  });

  it('releases its port on close', async () => {
    const [pa, pb] = await freePorts();
    const a = await openUdpNic(pa, HOST, pb, { localAddress: HOST });
    await a.close();
    const again = await peer(pa);
    expect(again.address().port).toBe(pa);
  });

  it('rejects a port already in use with a readable error', async () => {
    const taken = await peer();
    await expect(openUdpNic(taken.address().port, HOST, 9, { localAddress: HOST })).rejects.toThrow(/already in use/);
  });

  it('drops and counts frames sent after close', async () => {
    const [pa, pb] = await freePorts();
    const a = await openUdpNic(pa, HOST, pb, { localAddress: HOST });
    await a.close();
    a.send([frame(60, 1)]);
    expect(a.counters.tx_dropped).toBe(1);
  });

  it('binds only the loopback address when the peer is on this host', async () => {
    const qemu = await peer();
    const n = await openUdpNic(0, 'localhost', qemu.address().port);
    opened.push(n);
    expect(['127.0.0.1', '::1']).toContain(n.localAddress);
  });
});
