/**
 * The ARP cache of one interface and its queue of packets waiting for a
 * next hop's MAC (runtime-semantics.md 6.4, with the Linux-like decision of
 * section 14).
 *
 * - Learning: any valid ARP packet refreshes or corrects an existing entry;
 *   an entry is only *created* from a request aimed at our address or from a
 *   reply to a request we sent. Upstream cached every sender it heard, which
 *   let any host on the link poison the cache.
 * - Lifetime: 300 s since an ARP packet from that host was last seen (use
 *   does not refresh it). An expired entry is never returned.
 * - Unresolved next hop: packets wait in a per-IP queue bounded at 101
 *   packets and 212992 bytes, the oldest dropped first (Linux's default
 *   `unres_qlen` and `unres_qlen_bytes`: a burst of new flows to a next hop
 *   not yet resolved is delivered, as through Linux, and jumbo frames cannot
 *   make the queues large); upstream's queue had no bound.
 *   The first packet triggers a broadcast request; 3 more follow 1 s apart;
 *   1 s after the last one the queue is dropped and the next hop reported as
 *   failed, so the caller can send ICMP host unreachable for forwarded
 *   packets (6.4 FIX).
 *
 * The module does no I/O and reads no clock: calls take `now` (ms) and
 * return the actions to take as values. Packets are opaque (`P`): the stack
 * queues whatever it needs to send them later.
 */

import { ArpOperation, arpOperation, arpSenderIp, arpSenderMac, arpTargetIp, checkArp } from './wire/arp.ts';
import { broadcastMac, isMulticastMac, MAC_LEN, macEquals } from './wire/ethernet.ts';

export type ArpAction<P> =
  /** Broadcast a who-has request for `ip`. */
  | { readonly kind: 'request'; readonly ip: number }
  /** Answer a request for our address: unicast a reply to (`ip`, `mac`). */
  | { readonly kind: 'reply'; readonly ip: number; readonly mac: Uint8Array }
  /** `ip` resolved: send the packets that waited for it to `mac`, oldest first. */
  | { readonly kind: 'send'; readonly ip: number; readonly mac: Uint8Array; readonly packets: readonly P[] }
  /** Packets given up on: the queue overflowed (oldest dropped) or there is no room for another pending next hop. */
  | { readonly kind: 'drop'; readonly ip: number; readonly packets: readonly P[] }
  /** `ip` did not answer any request: its queue is dropped; the caller may send ICMP host unreachable. */
  | { readonly kind: 'failed'; readonly ip: number; readonly packets: readonly P[] };

/** Linux's defaults for `net.ipv4.neigh.default.unres_qlen` and `unres_qlen_bytes`. */
const DEFAULT_QUEUE_LIMIT = 101;
const DEFAULT_QUEUE_BYTES = 212_992;

export interface ArpCacheOptions<P = unknown> {
  /** Our address on this interface; 0 while unconfigured (DHCP pending). */
  readonly address: number;
  /** ms; default 300 s (6.4). */
  readonly lifetime?: number;
  /** Packets queued per unresolved next hop; default 101. */
  readonly queueLimit?: number;
  /** Bytes queued per unresolved next hop, as `size` counts them; default 212992. */
  readonly queueBytes?: number;
  /** A queued packet's size in bytes; default 0 (only the packet count bounds the queue). */
  readonly size?: (packet: P) => number;
  /** Requests after the first one; default 3 (6.4). */
  readonly retries?: number;
  /** ms between requests; default 1 s. */
  readonly retryInterval?: number;
  /** Cache entries kept; the least recently refreshed goes first. Default 1024 (bounds ARP floods, issue #820). */
  readonly maxEntries?: number;
  /** Next hops being resolved at once; default 256. */
  readonly maxPending?: number;
}

export interface ArpCacheCounters {
  requests_rx: number;
  replies_rx: number;
  /** Request actions returned (the caller sends them). */
  requests_tx: number;
  replies_tx: number;
  /** ARP packets that are not Ethernet/IPv4 or are truncated. */
  invalid: number;
  /** Entries created. */
  learned: number;
  /** An existing entry's MAC changed. */
  updated: number;
  /** Valid ARP packets that did not qualify to create an entry (Linux-like learning). */
  ignored: number;
  /** A sender claiming our own address. */
  address_conflicts: number;
  expired: number;
  evicted: number;
  /** Packets dropped from a full queue (oldest first) or for lack of a pending slot. */
  queue_dropped: number;
  /** Next hops that never answered. */
  resolve_failed: number;
  /** Packets dropped with a failed next hop. */
  failed_packets: number;
}

interface Entry {
  readonly mac: Uint8Array;
  /** When an ARP packet from the host was last seen, ms. */
  seen: number;
}

interface Pending<P> {
  packets: P[];
  bytes: number;
  requests: number;
  nextAt: number;
}

export class ArpCache<P> {
  readonly counters: ArpCacheCounters = {
    requests_rx: 0,
    replies_rx: 0,
    requests_tx: 0,
    replies_tx: 0,
    invalid: 0,
    learned: 0,
    updated: 0,
    ignored: 0,
    address_conflicts: 0,
    expired: 0,
    evicted: 0,
    queue_dropped: 0,
    resolve_failed: 0,
    failed_packets: 0,
  };
  #address: number;
  readonly #lifetime: number;
  readonly #queueLimit: number;
  readonly #queueBytes: number;
  readonly #size: (packet: P) => number;
  readonly #retries: number;
  readonly #retryInterval: number;
  readonly #maxEntries: number;
  readonly #maxPending: number;
  /** Map order = refresh order (an updated entry is re-inserted), so the first is the stalest. */
  readonly #entries = new Map<number, Entry>();
  readonly #pending = new Map<number, Pending<P>>();
  // The entry `lookup` found last: forwarded traffic comes in runs to one
  // next hop, and this spares those runs a Map lookup each. Cleared when
  // its entry leaves the table.
  #lastIp = -1;
  #last: Entry | undefined;

  constructor(options: ArpCacheOptions<P>) {
    this.#address = options.address >>> 0;
    this.#lifetime = options.lifetime ?? 300_000;
    this.#queueLimit = Math.max(1, options.queueLimit ?? DEFAULT_QUEUE_LIMIT);
    this.#queueBytes = options.queueBytes ?? DEFAULT_QUEUE_BYTES;
    this.#size = options.size ?? (() => 0);
    this.#retries = Math.max(0, options.retries ?? 3);
    this.#retryInterval = options.retryInterval ?? 1000;
    this.#maxEntries = Math.max(1, options.maxEntries ?? 1024);
    this.#maxPending = Math.max(1, options.maxPending ?? 256);
  }

  /** Our address changed (DHCP): requests aimed at the new one are ours now. */
  setAddress(address: number): void {
    this.#address = address >>> 0;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Next hops waiting for an answer. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** When `tick` next has a request to re-send or a next hop to give up on; Infinity when none waits. */
  get nextRetryAt(): number {
    let soonest = Infinity;
    for (const pending of this.#pending.values()) if (pending.nextAt < soonest) soonest = pending.nextAt;
    return soonest;
  }

  /**
   * The MAC for `ip` if known and not expired; ff:ff:ff:ff:ff:ff for the
   * limited broadcast. The returned array is the cache's own: copy it into
   * the frame, never change it.
   */
  lookup(ip: number, now: number): Uint8Array | null {
    ip >>>= 0;
    if (ip === 0xffffffff) return broadcastMac();
    let entry = ip === this.#lastIp ? this.#last : undefined;
    if (entry === undefined) {
      entry = this.#entries.get(ip);
      if (entry !== undefined) {
        this.#lastIp = ip;
        this.#last = entry;
      }
    }
    if (entry === undefined || now - entry.seen >= this.#lifetime) return null;
    return entry.mac;
  }

  /**
   * `packet` must go to `ip`, whose MAC `lookup` did not know: queue it.
   * The first packet for an IP starts resolution (a 'request' action); a
   * full queue drops its oldest packet ('drop').
   */
  enqueue(ip: number, packet: P, now: number): ArpAction<P>[] {
    ip >>>= 0;
    const pending = this.#pending.get(ip);
    if (pending !== undefined) {
      pending.packets.push(packet);
      pending.bytes += this.#size(packet);
      const dropped: P[] = [];
      // The oldest go first; the newest packet always stays, however large.
      while (pending.packets.length > this.#queueLimit || (pending.bytes > this.#queueBytes && pending.packets.length > 1)) {
        const oldest = pending.packets.shift()!;
        pending.bytes -= this.#size(oldest);
        dropped.push(oldest);
      }
      if (dropped.length === 0) return [];
      this.counters.queue_dropped += dropped.length;
      return [{ kind: 'drop', ip, packets: dropped }];
    }
    if (this.#pending.size >= this.#maxPending) {
      this.counters.queue_dropped++;
      return [{ kind: 'drop', ip, packets: [packet] }];
    }
    this.#pending.set(ip, { packets: [packet], bytes: this.#size(packet), requests: 1, nextAt: now + this.#retryInterval });
    this.counters.requests_tx++;
    return [{ kind: 'request', ip }];
  }

  /**
   * An ARP packet arrived (`offset` = start of the ARP header, `end` = end of
   * the frame). Learns the sender if allowed, answers a request for our
   * address, and releases the packets that waited for the sender.
   */
  receive(bytes: Uint8Array, offset: number, end: number, now: number): ArpAction<P>[] {
    if (checkArp(bytes, offset, end) !== undefined) {
      this.counters.invalid++;
      return [];
    }
    const isRequest = arpOperation(bytes, offset) === ArpOperation.Request;
    if (isRequest) this.counters.requests_rx++;
    else this.counters.replies_rx++;
    const senderIp = arpSenderIp(bytes, offset);
    const senderMac = arpSenderMac(bytes, offset);
    const forUs = this.#address !== 0 && arpTargetIp(bytes, offset) === this.#address;
    const actions: ArpAction<P>[] = [];
    if (senderIp === this.#address && senderIp !== 0) {
      this.counters.address_conflicts++;
    } else if (senderIp !== 0 && !isMulticastMac(senderMac)) {
      // (Sender 0.0.0.0 is an RFC 5227 probe; a group MAC is never a host's.)
      const mayCreate = (isRequest && forUs) || (!isRequest && this.#pending.has(senderIp));
      const mac = this.#learn(senderIp, senderMac, now, mayCreate);
      const pending = mac === null ? undefined : this.#pending.get(senderIp);
      if (mac !== null && pending !== undefined) {
        this.#pending.delete(senderIp);
        actions.push({ kind: 'send', ip: senderIp, mac, packets: pending.packets });
      }
    }
    if (isRequest && forUs) {
      this.counters.replies_tx++;
      actions.push({ kind: 'reply', ip: senderIp, mac: senderMac.slice() });
    }
    return actions;
  }

  /**
   * Drives time: re-sends requests that are due, gives up on next hops that
   * used up their retries, and forgets expired entries. Call it about once a
   * second.
   */
  tick(now: number): ArpAction<P>[] {
    const actions: ArpAction<P>[] = [];
    for (const [ip, pending] of this.#pending) {
      if (now < pending.nextAt) continue;
      if (pending.requests <= this.#retries) {
        pending.requests++;
        pending.nextAt = now + this.#retryInterval;
        this.counters.requests_tx++;
        actions.push({ kind: 'request', ip });
      } else {
        this.#pending.delete(ip);
        this.counters.resolve_failed++;
        this.counters.failed_packets += pending.packets.length;
        actions.push({ kind: 'failed', ip, packets: pending.packets });
      }
    }
    for (const [ip, entry] of this.#entries) {
      if (now - entry.seen >= this.#lifetime) {
        this.#forget(ip);
        this.counters.expired++;
      }
    }
    return actions;
  }

  #forget(ip: number): void {
    this.#entries.delete(ip);
    if (ip === this.#lastIp) {
      this.#lastIp = -1;
      this.#last = undefined;
    }
  }

  /** Refreshes or corrects an entry, or creates one when `mayCreate`; returns the entry's MAC, or null when not learned. */
  #learn(ip: number, mac: Uint8Array, now: number, mayCreate: boolean): Uint8Array | null {
    const entry = this.#entries.get(ip);
    if (entry !== undefined) {
      if (!macEquals(entry.mac, 0, mac, 0)) {
        entry.mac.set(mac.subarray(0, MAC_LEN));
        this.counters.updated++;
      }
      entry.seen = now;
      this.#entries.delete(ip);
      this.#entries.set(ip, entry);
      return entry.mac;
    }
    if (!mayCreate) {
      this.counters.ignored++;
      return null;
    }
    if (this.#entries.size >= this.#maxEntries) {
      this.#forget(this.#entries.keys().next().value!);
      this.counters.evicted++;
    }
    const created: Entry = { mac: mac.slice(0, MAC_LEN), seen: now };
    this.#entries.set(ip, created);
    this.counters.learned++;
    return created.mac;
  }
}
