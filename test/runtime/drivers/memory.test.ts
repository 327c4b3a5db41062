import { describe, expect, it, vi } from 'vitest';
import {
  attach,
  createMemoryNic,
  detach,
  MemoryNetwork,
  memoryNetwork,
  openMemoryNic,
  type MemoryNic,
} from '../../../runtime/drivers/memory.ts';
import { parseMac } from '../../../runtime/wire/ethernet.ts';
import { VLAN_ARP_REQUEST } from '../wire/frames.ts';

const MAC_A = parseMac('02:00:00:00:00:0a')!;
const MAC_B = parseMac('02:00:00:00:00:0b')!;
const MAC_C = parseMac('02:00:00:00:00:0c')!;
const BROADCAST = parseMac('ff:ff:ff:ff:ff:ff')!;
const MULTICAST = parseMac('01:00:5e:00:00:fb')!;

/** A 60-byte frame from `src` to `dst` whose last byte is `tag`, to tell frames apart. */
function frame(dst: Uint8Array, src: Uint8Array, tag = 0, length = 60): Uint8Array {
  const f = new Uint8Array(length);
  f.set(dst, 0);
  f.set(src, 6);
  f[12] = 0x88;
  f[13] = 0xb5; // IEEE 802 local experimental EtherType
  f[length - 1] = tag;
  return f;
}

/** Everything `nic` receives, batch by batch, copied (the driver owns its buffers only during the call). */
function collect(nic: MemoryNic): Uint8Array[][] {
  const batches: Uint8Array[][] = [];
  nic.onReceive((frames) => batches.push(frames.map((f) => Uint8Array.from(f))));
  return batches;
}

/** A network with a hand-driven clock and a switch `lan` with NICs A, B and C plugged in. */
function lan(options: { ageingTime?: number } = {}) {
  const time = { now: 0 };
  const net = new MemoryNetwork({ clock: () => time.now, ...options });
  const sw = net.switch('lan');
  const [a, b, c] = [MAC_A, MAC_B, MAC_C].map((mac, i) => {
    const nic = net.createNic({ name: 'abc'[i]!, mac });
    attach(nic, sw);
    return nic;
  }) as [MemoryNic, MemoryNic, MemoryNic];
  return { net, sw, a, b, c, atA: collect(a), atB: collect(b), atC: collect(c), time };
}

describe('memory switch', () => {
  it('floods a frame for an unknown destination to every other port', () => {
    const { net, a, atA, atB, atC } = lan();
    a.send([frame(MAC_B, MAC_A, 1)]);
    net.flush();
    expect(atB.flat()).toEqual([frame(MAC_B, MAC_A, 1)]);
    expect(atC.flat()).toEqual([frame(MAC_B, MAC_A, 1)]);
    expect(atA.flat()).toEqual([]);
  });

  it('forwards a frame for a learned destination to that port alone', () => {
    const { net, a, b, atA, atC } = lan();
    b.send([frame(MAC_A, MAC_B, 1)]);
    net.flush();
    atC.length = 0;
    a.send([frame(MAC_B, MAC_A, 2)]);
    net.flush();
    expect(atC.flat()).toEqual([]);
    expect(atA.flat()).toEqual([frame(MAC_A, MAC_B, 1)]);
  });

  it('floods broadcast frames to every other port even when it knows every station', () => {
    const { net, a, b, c, atA, atB, atC } = lan();
    for (const [nic, mac] of [[a, MAC_A], [b, MAC_B], [c, MAC_C]] as const) nic.send([frame(BROADCAST, mac)]);
    net.flush();
    for (const got of [atA, atB, atC]) got.length = 0;
    a.send([frame(BROADCAST, MAC_A, 9)]);
    net.flush();
    expect(atB.flat()).toEqual([frame(BROADCAST, MAC_A, 9)]);
    expect(atC.flat()).toEqual([frame(BROADCAST, MAC_A, 9)]);
    expect(atA.flat()).toEqual([]);
  });

  it('floods multicast frames to every other port', () => {
    const { net, a, sw, atB, atC } = lan();
    a.send([frame(MULTICAST, MAC_A, 3)]);
    net.flush();
    expect(atB.flat()).toEqual([frame(MULTICAST, MAC_A, 3)]);
    expect(atC.flat()).toEqual([frame(MULTICAST, MAC_A, 3)]);
    expect(sw.counters.flooded).toBe(1);
  });

  it('never learns a multicast source address', () => {
    const { net, b, sw } = lan();
    b.send([frame(BROADCAST, MULTICAST)]);
    net.flush();
    expect(sw.table()).toEqual([]);
  });

  it('filters a frame whose destination sits behind the port it came from', () => {
    const { net, a, sw, atA, atB, atC } = lan();
    a.send([frame(BROADCAST, MAC_A)]);
    net.flush();
    atB.length = 0;
    atC.length = 0;
    a.send([frame(MAC_A, MAC_A, 5)]);
    net.flush();
    expect([...atA, ...atB, ...atC].flat()).toEqual([]);
    expect(sw.counters.filtered).toBe(1);
  });

  it('forgets a station once the ageing time has passed since it was last heard, and floods to it again', () => {
    const { net, a, b, sw, atC, time } = lan({ ageingTime: 1000 });
    b.send([frame(BROADCAST, MAC_B)]);
    net.flush();
    atC.length = 0;
    time.now = 1000;
    a.send([frame(MAC_B, MAC_A, 1)]);
    net.flush();
    expect(atC.flat().map((f) => f[59])).toEqual([]);
    time.now = 1001;
    a.send([frame(MAC_B, MAC_A, 2)]);
    net.flush();
    expect(atC.flat().map((f) => f[59])).toEqual([2]);
    expect(sw.counters.aged_out).toBe(1);
  });

  it('keeps a station that is heard from again before its entry ages out', () => {
    const { net, a, b, atC, time } = lan({ ageingTime: 1000 });
    b.send([frame(BROADCAST, MAC_B)]);
    time.now = 900;
    b.send([frame(BROADCAST, MAC_B)]);
    net.flush();
    atC.length = 0;
    time.now = 1800;
    a.send([frame(MAC_B, MAC_A, 1)]);
    net.flush();
    expect(atC.flat()).toEqual([]);
  });

  it('lists what it has learned, with the port and the age of each entry', () => {
    const { net, a, b, sw, time } = lan();
    a.send([frame(BROADCAST, MAC_A)]);
    time.now = 40;
    b.send([frame(BROADCAST, MAC_B)]);
    net.flush();
    time.now = 100;
    expect(sw.table()).toEqual([
      { mac: '02:00:00:00:00:0a', port: 'a', age: 100 },
      { mac: '02:00:00:00:00:0b', port: 'b', age: 60 },
    ]);
  });

  it('follows a station that moves to another port', () => {
    const { net, a, b, c, atB, atC } = lan();
    b.send([frame(BROADCAST, MAC_B)]);
    net.flush();
    c.send([frame(BROADCAST, MAC_B)]); // B's address now speaks from C's port
    net.flush();
    atB.length = 0;
    atC.length = 0;
    a.send([frame(MAC_B, MAC_A, 7)]);
    net.flush();
    expect(atB.flat()).toEqual([]);
    expect(atC.flat()).toEqual([frame(MAC_B, MAC_A, 7)]);
  });

  it('forwards 802.1Q-tagged frames unchanged, learning their source like any other', () => {
    const { net, a, b, atA, atB, atC } = lan();
    const tagged = Uint8Array.from(VLAN_ARP_REQUEST);
    tagged.set(MAC_B, 6);
    b.send([tagged]);
    net.flush();
    expect(atA.flat()).toEqual([tagged]);
    expect(atC.flat()).toEqual([tagged]);
    const taggedReply = frame(MAC_B, MAC_A, 4);
    taggedReply.set([0x81, 0x00, 0x00, 0x0a, 0x08, 0x06], 12);
    atC.length = 0;
    a.send([taggedReply]);
    net.flush();
    expect(atB.flat()).toEqual([taggedReply]);
    expect(atC.flat()).toEqual([]);
  });

  it('forgets the stations of a port whose NIC is unplugged', () => {
    const { net, a, b, sw } = lan();
    a.send([frame(BROADCAST, MAC_A)]);
    b.send([frame(BROADCAST, MAC_B)]);
    net.flush();
    detach(b);
    expect(sw.table().map((e) => e.port)).toEqual(['a']);
    expect(sw.ports.map((p) => p.name)).toEqual(['a', 'c']);
  });
});

describe('memory NIC', () => {
  it('delivers on a later turn of the event loop, never during send', async () => {
    const { a, atB } = lan();
    a.send([frame(MAC_B, MAC_A)]);
    expect(atB).toEqual([]);
    await new Promise((resolve) => setImmediate(resolve));
    expect(atB.flat()).toEqual([frame(MAC_B, MAC_A)]);
  });

  it('delivers the frames sent in one tick to a receiver as one batch', async () => {
    const { a, c, atB } = lan();
    a.send([frame(MAC_B, MAC_A, 1)]);
    a.send([frame(MAC_B, MAC_A, 2), frame(MAC_B, MAC_A, 3)]);
    c.send([frame(MAC_B, MAC_C, 4)]);
    await vi.waitFor(() => expect(atB.length).toBeGreaterThan(0));
    expect(atB.map((batch) => batch.map((f) => f[59]))).toEqual([[1, 2, 3, 4]]);
    expect(c.network.pending).toBe(false);
  });

  it('delivers a reply sent from a receive handler on a later turn, without re-entering either side', async () => {
    const net = new MemoryNetwork();
    const a = net.createNic({ name: 'a', mac: MAC_A });
    const b = net.createNic({ name: 'b', mac: MAC_B });
    net.wire(a, b);
    const events: string[] = [];
    let aSending = false;
    let bHandling = false;
    b.onReceive(() => {
      bHandling = true;
      events.push(aSending ? 'b ran inside a.send' : 'b got the request');
      b.send([frame(MAC_A, MAC_B)]);
      bHandling = false;
    });
    a.onReceive(() => events.push(bHandling ? 'a ran inside b' : 'a got the reply'));
    aSending = true;
    a.send([frame(MAC_B, MAC_A)]);
    aSending = false;
    await vi.waitFor(() => expect(events).toHaveLength(2));
    expect(events).toEqual(['b got the request', 'a got the reply']);
  });

  it('runs pending deliveries synchronously on flush, a reply one turn after its request', () => {
    const net = new MemoryNetwork();
    const a = net.createNic({ name: 'a', mac: MAC_A });
    const b = net.createNic({ name: 'b', mac: MAC_B });
    net.wire(a, b);
    b.onReceive((frames) => b.send(frames.map(() => frame(MAC_A, MAC_B))));
    const atA = collect(a);
    a.send([frame(MAC_B, MAC_A)]);
    expect(net.pending).toBe(true);
    expect(net.flush()).toBe(2);
    expect(atA.flat()).toHaveLength(1);
    expect(net.pending).toBe(false);
  });

  it('stops flushing with an error when two NICs answer each other forever', () => {
    const net = new MemoryNetwork();
    const a = net.createNic({ name: 'a', mac: MAC_A });
    const b = net.createNic({ name: 'b', mac: MAC_B });
    net.wire(a, b);
    a.onReceive((frames) => a.send(frames));
    b.onReceive((frames) => b.send(frames));
    a.send([frame(MAC_B, MAC_A)]);
    expect(() => net.flush(50)).toThrow(/still flowing after 50/);
    a.close();
  });

  it('refuses a flush from inside a receive handler', () => {
    const net = new MemoryNetwork();
    const a = net.createNic({ name: 'a', mac: MAC_A });
    const b = net.createNic({ name: 'b', mac: MAC_B });
    net.wire(a, b);
    b.onReceive(() => net.flush());
    a.send([frame(MAC_B, MAC_A)]);
    expect(() => net.flush()).toThrow(/from a receive handler/);
  });

  it('still delivers to the other receivers when one handler throws, then reports the error', () => {
    const { net, a, b, atC } = lan();
    b.onReceive(() => {
      throw new Error('boom');
    });
    a.send([frame(BROADCAST, MAC_A)]);
    expect(() => net.flush()).toThrow('boom');
    expect(atC.flat()).toHaveLength(1);
  });

  it('copies a frame on send, so the sender may reuse its buffer at once', () => {
    const { net, a, atB } = lan();
    const buf = frame(MAC_B, MAC_A, 1);
    a.send([buf]);
    buf.fill(0);
    net.flush();
    expect(atB.flat()).toEqual([frame(MAC_B, MAC_A, 1)]);
  });

  it('gives each receiver of a flooded frame a copy of its own', () => {
    const { net, a, c } = lan();
    const b = a.network.createNic({ name: 'd', mac: MAC_B });
    attach(b, net.switch('lan'));
    b.onReceive((frames) => frames[0]!.fill(0xee));
    const atC = collect(c);
    a.send([frame(BROADCAST, MAC_A, 1)]);
    net.flush();
    expect(atC.flat()).toEqual([frame(BROADCAST, MAC_A, 1)]);
  });

  it('drops and counts frames beyond its receive queue bound', () => {
    const net = new MemoryNetwork();
    const a = net.createNic({ name: 'a', mac: MAC_A });
    const b = net.createNic({ name: 'b', mac: MAC_B, queueLimit: 3 });
    net.wire(a, b);
    const atB = collect(b);
    a.send([1, 2, 3, 4, 5].map((tag) => frame(MAC_B, MAC_A, tag)));
    net.flush();
    expect(atB.flat().map((f) => f[59])).toEqual([1, 2, 3]);
    expect(b.counters.rx_dropped_queue_full).toBe(2);
    expect(a.counters.tx_frames).toBe(5);
  });

  it('bounds the receive queue at 4096 frames by default', () => {
    const net = new MemoryNetwork();
    const a = net.createNic({ name: 'a', mac: MAC_A });
    const b = net.createNic({ name: 'b', mac: MAC_B });
    net.wire(a, b);
    a.send(Array.from({ length: 5000 }, () => frame(MAC_B, MAC_A)));
    expect(b.counters.rx_dropped_queue_full).toBe(5000 - 4096);
  });

  it('keeps received frames until a handler is installed', () => {
    const net = new MemoryNetwork();
    const a = net.createNic({ name: 'a', mac: MAC_A });
    const b = net.createNic({ name: 'b', mac: MAC_B });
    net.wire(a, b);
    a.send([frame(MAC_B, MAC_A, 1)]);
    expect(net.flush()).toBe(0);
    const atB = collect(b);
    net.flush();
    expect(atB.flat().map((f) => f[59])).toEqual([1]);
  });

  it('counts frames, bytes and batches both ways', () => {
    const { net, a, b } = lan();
    a.send([frame(MAC_B, MAC_A, 0, 60), frame(MAC_B, MAC_A, 0, 100)]);
    net.flush();
    expect(a.counters).toMatchObject({ tx_frames: 2, tx_bytes: 160, tx_dropped: 0 });
    expect(b.counters).toMatchObject({ rx_frames: 2, rx_bytes: 160, rx_batches: 1 });
  });

  it('drops and counts frames sent while plugged into nothing', () => {
    const nic = new MemoryNetwork().createNic({ name: 'lonely', mac: MAC_A });
    nic.send([frame(BROADCAST, MAC_A)]);
    expect(nic.counters).toMatchObject({ tx_frames: 0, tx_dropped: 1 });
  });

  it('drops and counts frames shorter than an Ethernet header', () => {
    const { net, a, atB } = lan();
    a.send([new Uint8Array(13), frame(MAC_B, MAC_A, 0, 14)]);
    net.flush();
    expect(a.counters.tx_dropped_short).toBe(1);
    expect(atB.flat()).toHaveLength(1);
  });

  it('leaves the switch on close, drops what it sends afterwards and receives nothing more', () => {
    const { net, a, b, sw, atB } = lan();
    a.send([frame(BROADCAST, MAC_A)]);
    b.close();
    net.flush();
    b.send([frame(BROADCAST, MAC_B)]);
    expect(atB).toEqual([]);
    expect(b.counters.tx_dropped).toBe(1);
    expect(sw.ports.map((p) => p.name)).toEqual(['a', 'c']);
  });

  it('carries every frame between two wired NICs, whatever its destination', () => {
    const net = new MemoryNetwork();
    const a = net.createNic({ name: 'a', mac: MAC_A });
    const b = net.createNic({ name: 'b', mac: MAC_B });
    net.wire(a, b);
    const atB = collect(b);
    a.send([frame(MAC_C, MAC_A, 1), frame(BROADCAST, MAC_A, 2)]);
    net.flush();
    expect(atB.flat().map((f) => f[59])).toEqual([1, 2]);
    expect(b.link).toBe(a);
  });

  it('refuses to plug in a NIC that is plugged in already', () => {
    const { net, a } = lan();
    const other = net.createNic({ name: 'x', mac: MAC_C });
    expect(() => attach(a, other)).toThrow(/a is already plugged into lan/);
    expect(() => net.wire(other, a)).toThrow(/a is already plugged into lan/);
  });

  it('takes the link down for both ends of a wire when one is unplugged', () => {
    const net = new MemoryNetwork();
    const a = net.createNic({ name: 'a', mac: MAC_A });
    const b = net.createNic({ name: 'b', mac: MAC_B });
    net.wire(a, b);
    detach(a);
    b.send([frame(MAC_A, MAC_B)]);
    expect(b.counters.tx_dropped).toBe(1);
    expect(b.link).toBeUndefined();
  });
});

describe('memory:NAME', () => {
  it('plugs every NIC opened with one name into the switch of that name, which code reaches by name', () => {
    const one = openMemoryNic('test-seg-1', { mac: MAC_A });
    const two = openMemoryNic('test-seg-1', { mac: MAC_B });
    try {
      const sw = memoryNetwork.get('test-seg-1');
      expect(sw?.ports).toEqual([one, two]);
      const probe = createMemoryNic({ name: 'probe', mac: MAC_C });
      attach(probe, sw!);
      const atProbe = collect(probe);
      one.send([frame(BROADCAST, MAC_A, 1)]);
      memoryNetwork.flush();
      expect(atProbe.flat().map((f) => f[59])).toEqual([1]);
    } finally {
      memoryNetwork.delete('test-seg-1');
    }
  });

  it('keeps segments of different names apart', () => {
    const one = openMemoryNic('test-seg-2', { mac: MAC_A });
    const two = openMemoryNic('test-seg-3', { mac: MAC_B });
    try {
      const atTwo = collect(two);
      one.send([frame(BROADCAST, MAC_A)]);
      memoryNetwork.flush();
      expect(atTwo).toEqual([]);
    } finally {
      memoryNetwork.delete('test-seg-2');
      memoryNetwork.delete('test-seg-3');
    }
  });

  it('names the NICs of a segment after it and their port', () => {
    const net = new MemoryNetwork();
    expect([openMemoryNic('a', {}, net).name, openMemoryNic('a', {}, net).name]).toEqual(['a.0', 'a.1']);
    expect(net.names()).toEqual(['a']);
  });
});
