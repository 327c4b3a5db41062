import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type ArpAction, ArpCache, type ArpCacheOptions } from '../../runtime/arp-cache.ts';
import { ARP_LEN, ArpRepr } from '../../runtime/wire/arp.ts';
import { ip } from './build.ts';

const US = ip('10.0.0.1');
const PEER = ip('10.0.0.2');
const OTHER = ip('10.0.0.3');
const MAC_PEER = Uint8Array.of(2, 0, 0, 0, 0, 2);
const MAC_NEW = Uint8Array.of(2, 0, 0, 0, 0, 0x22);
const MAC_US = Uint8Array.of(2, 0, 0, 0, 0, 1);
const ZERO_MAC = new Uint8Array(6);
const T0 = 100_000;

function arp(operation: 'request' | 'reply', senderIp: number, senderMac: Uint8Array, targetIp: number, targetMac = ZERO_MAC): Uint8Array {
  const bytes = new Uint8Array(ARP_LEN);
  ArpRepr.emit({ operation, senderIp, senderMac, targetIp, targetMac }, bytes, 0);
  return bytes;
}

function cache(options: Partial<ArpCacheOptions> = {}): ArpCache<string> {
  return new ArpCache<string>({ address: US, ...options });
}

function receive(c: ArpCache<string>, bytes: Uint8Array, now = T0): ArpAction<string>[] {
  return c.receive(bytes, 0, bytes.length, now);
}

describe('ARP resolution', () => {
  it('knows nothing about a host it never heard from', () => {
    expect(cache().lookup(PEER, T0)).toBeNull();
  });

  it('resolves the limited broadcast to the broadcast MAC', () => {
    expect(cache().lookup(0xffffffff, T0)).toEqual(Uint8Array.of(255, 255, 255, 255, 255, 255));
  });

  it('sends a request for the first packet queued for a next hop and none for the next ones', () => {
    const c = cache();
    expect(c.enqueue(PEER, 'p1', T0)).toEqual([{ kind: 'request', ip: PEER }]);
    expect(c.enqueue(PEER, 'p2', T0)).toEqual([]);
    expect(c.counters.requests_tx).toBe(1);
  });

  it('holds 101 packets for one next hop, as Linux does, and drops the oldest for the 102nd', () => {
    const c = cache();
    for (let i = 1; i <= 101; i++) c.enqueue(PEER, `p${i}`, T0);
    expect(c.counters.queue_dropped).toBe(0);
    expect(c.enqueue(PEER, 'p102', T0)).toEqual([{ kind: 'drop', ip: PEER, packets: ['p1'] }]);
  });

  it('holds at most 212992 bytes for one next hop, as Linux does, dropping the oldest, but always the newest packet', () => {
    const c = new ArpCache<number>({ address: US, size: (bytes) => bytes });
    c.enqueue(PEER, 100_000, T0);
    c.enqueue(PEER, 100_000, T0);
    expect(c.enqueue(PEER, 100_001, T0)).toEqual([{ kind: 'drop', ip: PEER, packets: [100_000] }]);
    expect(c.enqueue(PEER, 300_000, T0)).toEqual([{ kind: 'drop', ip: PEER, packets: [100_000, 100_001] }]);
    expect(c.counters.queue_dropped).toBe(3);
  });

  it('drops the oldest packet when one more than the queue limit waits for the same next hop', () => {
    const c = cache({ queueLimit: 3 });
    c.enqueue(PEER, 'p1', T0);
    c.enqueue(PEER, 'p2', T0);
    c.enqueue(PEER, 'p3', T0);
    expect(c.enqueue(PEER, 'p4', T0)).toEqual([{ kind: 'drop', ip: PEER, packets: ['p1'] }]);
    expect(c.counters.queue_dropped).toBe(1);
  });

  it('releases the queued packets in order when the reply arrives, and caches the MAC', () => {
    const c = cache();
    c.enqueue(PEER, 'p1', T0);
    c.enqueue(PEER, 'p2', T0);
    expect(receive(c, arp('reply', PEER, MAC_PEER, US, MAC_US))).toEqual([{ kind: 'send', ip: PEER, mac: MAC_PEER, packets: ['p1', 'p2'] }]);
    expect(c.lookup(PEER, T0)).toEqual(MAC_PEER);
    expect(c.pendingCount).toBe(0);
  });

  it('tells when the next request is due, and Infinity once nothing waits', () => {
    const c = cache();
    expect(c.nextRetryAt).toBe(Infinity);
    c.enqueue(PEER, 'p1', T0);
    c.enqueue(PEER + 1, 'q1', T0 + 300);
    expect(c.nextRetryAt).toBe(T0 + 1000);
    c.tick(T0 + 1000);
    expect(c.nextRetryAt).toBe(T0 + 1300);
    receive(c, arp('reply', PEER, MAC_PEER, US, MAC_US));
    receive(c, arp('reply', PEER + 1, MAC_PEER, US, MAC_US));
    expect(c.nextRetryAt).toBe(Infinity);
  });

  it('retries three times one second apart, then drops the queue and reports the next hop failed', () => {
    const c = cache();
    c.enqueue(PEER, 'p1', T0);
    expect(c.tick(T0 + 999)).toEqual([]);
    expect(c.tick(T0 + 1000)).toEqual([{ kind: 'request', ip: PEER }]);
    expect(c.tick(T0 + 2000)).toEqual([{ kind: 'request', ip: PEER }]);
    expect(c.tick(T0 + 3000)).toEqual([{ kind: 'request', ip: PEER }]);
    expect(c.tick(T0 + 4000)).toEqual([{ kind: 'failed', ip: PEER, packets: ['p1'] }]);
    expect(c.counters).toMatchObject({ requests_tx: 4, resolve_failed: 1, failed_packets: 1 });
    expect(c.tick(T0 + 5000)).toEqual([]);
  });

  it('stops retrying once the next hop answered', () => {
    const c = cache();
    c.enqueue(PEER, 'p1', T0);
    c.tick(T0 + 1000);
    receive(c, arp('reply', PEER, MAC_PEER, US, MAC_US), T0 + 1500);
    expect(c.tick(T0 + 2000)).toEqual([]);
  });

  it('refuses to start resolving more next hops than it may track at once', () => {
    const c = cache({ maxPending: 1 });
    c.enqueue(PEER, 'p1', T0);
    expect(c.enqueue(OTHER, 'q1', T0)).toEqual([{ kind: 'drop', ip: OTHER, packets: ['q1'] }]);
  });
});

describe('ARP learning', () => {
  it('learns the sender of a request aimed at us and answers it', () => {
    const c = cache();
    expect(receive(c, arp('request', PEER, MAC_PEER, US))).toEqual([{ kind: 'reply', ip: PEER, mac: MAC_PEER }]);
    expect(c.lookup(PEER, T0)).toEqual(MAC_PEER);
  });

  it('does not learn from an unsolicited reply', () => {
    const c = cache();
    expect(receive(c, arp('reply', PEER, MAC_PEER, US, MAC_US))).toEqual([]);
    expect(c.lookup(PEER, T0)).toBeNull();
    expect(c.counters.ignored).toBe(1);
  });

  it('does not learn from a request aimed at another host', () => {
    const c = cache();
    expect(receive(c, arp('request', PEER, MAC_PEER, OTHER))).toEqual([]);
    expect(c.lookup(PEER, T0)).toBeNull();
  });

  it('updates a known host from any ARP packet, even one not aimed at us', () => {
    const c = cache();
    receive(c, arp('request', PEER, MAC_PEER, US));
    receive(c, arp('request', PEER, MAC_NEW, OTHER), T0 + 10);
    expect(c.lookup(PEER, T0 + 10)).toEqual(MAC_NEW);
    expect(c.counters.updated).toBe(1);
  });

  it('keeps an entry for 300 seconds after the host was last heard', () => {
    const c = cache();
    receive(c, arp('request', PEER, MAC_PEER, US));
    expect(c.lookup(PEER, T0 + 299_999)).toEqual(MAC_PEER);
    expect(c.lookup(PEER, T0 + 300_000)).toBeNull();
    c.tick(T0 + 300_000);
    expect(c.size).toBe(0);
    expect(c.counters.expired).toBe(1);
  });

  it('extends the lifetime when the host is heard again', () => {
    const c = cache();
    receive(c, arp('request', PEER, MAC_PEER, US));
    receive(c, arp('request', PEER, MAC_PEER, OTHER), T0 + 200_000);
    expect(c.lookup(PEER, T0 + 450_000)).toEqual(MAC_PEER);
  });

  it('ignores a sender claiming our own address and counts the conflict', () => {
    const c = cache();
    receive(c, arp('request', US, MAC_PEER, OTHER));
    expect(c.lookup(US, T0)).toBeNull();
    expect(c.counters.address_conflicts).toBe(1);
  });

  it('does not learn from an address probe with sender 0.0.0.0', () => {
    const c = cache();
    receive(c, arp('request', 0, MAC_PEER, US));
    expect(c.size).toBe(0);
  });

  it('takes no request as aimed at it while it has no address', () => {
    const c = cache({ address: 0 });
    expect(receive(c, arp('request', PEER, MAC_PEER, 0))).toEqual([]);
    c.setAddress(US);
    expect(receive(c, arp('request', PEER, MAC_PEER, US))).toHaveLength(1);
  });

  it('forgets the stalest host when the cache is full', () => {
    const c = cache({ maxEntries: 1 });
    receive(c, arp('request', PEER, MAC_PEER, US));
    receive(c, arp('request', OTHER, MAC_NEW, US));
    expect(c.lookup(PEER, T0)).toBeNull();
    expect(c.lookup(OTHER, T0)).toEqual(MAC_NEW);
    expect(c.counters.evicted).toBe(1);
  });

  it('forgets an evicted host even right after a lookup found it', () => {
    const c = cache({ maxEntries: 1 });
    receive(c, arp('request', PEER, MAC_PEER, US));
    expect(c.lookup(PEER, T0)).toEqual(MAC_PEER);
    receive(c, arp('request', OTHER, MAC_NEW, US));
    expect(c.lookup(PEER, T0)).toBeNull();
    expect(c.lookup(OTHER, T0)).toEqual(MAC_NEW);
  });

  it('counts and ignores a packet that is not Ethernet/IPv4 ARP', () => {
    const c = cache();
    const bytes = arp('request', PEER, MAC_PEER, US);
    bytes[1] = 6; // hardware type 6 (IEEE 802)
    expect(receive(c, bytes)).toEqual([]);
    expect(receive(c, bytes.subarray(0, 20))).toEqual([]);
    expect(c.counters.invalid).toBe(2);
  });

  it('never throws on random bytes', () => {
    const c = cache();
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), fc.nat(40), fc.nat(50), (bytes, offset, end) => {
        expect(Array.isArray(c.receive(bytes, offset, end, T0))).toBe(true);
      }),
    );
  });
});
