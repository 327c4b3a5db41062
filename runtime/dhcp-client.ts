import { macEquals } from './wire/ethernet.ts';
import { DhcpMessageType, DhcpOption, DhcpRepr, dhcpRequestRepr } from './wire/dhcp.ts';

/*
 * The DHCP client of an Iface with `config: dhcp` or `dhcp-with-fallback`
 * (runtime-semantics.md 6.1, 6.2), as a state machine with no I/O: the
 * appliance feeds it time and received messages and carries out the actions
 * it returns. Upstream's behaviour where the spec keeps it - a DISCOVER every
 * second, a 10 s timeout, the router defaulting to the server and DNS to the
 * router - and its FIXes: the ACK's options count (falling back to the
 * OFFER's), and the lease is renewed at T1 and rebound at T2 (RFC 2131 4.4.5);
 * a lease that runs out unconfigures the Iface and negotiation starts over.
 * The 10 s give-up is for the boot only: once a lease was held, the client
 * keeps looking for a server for as long as it runs, DISCOVERs backing off
 * to one every 64 s (RFC 2131 4.1), so an outage longer than the lease
 * heals by itself when the server is back.
 */

export interface DhcpLease {
  readonly address: number;
  readonly prefix: number;
  readonly gateway: number;
  readonly dns: number;
  readonly server: number;
  /** Seconds, as granted; 0xffffffff is forever. */
  readonly leaseTime: number;
}

export type DhcpAction =
  /** A message from UDP port 68 to port 67 of `dst`, from `src` (0 before an address is bound). */
  | { readonly kind: 'send'; readonly message: Uint8Array; readonly src: number; readonly dst: number }
  | { readonly kind: 'configure'; readonly lease: DhcpLease }
  /** The lease ran out or the server refused it: the address is no longer ours. */
  | { readonly kind: 'unconfigure' }
  /**
   * No lease 10 s into negotiating: time for a fallback configuration. At
   * boot the client gives up then; after a lost lease (`retrying`) it goes
   * on asking, and a lease that comes later replaces the fallback.
   */
  | { readonly kind: 'timeout'; readonly retrying: boolean };

export type DhcpState = 'selecting' | 'requesting' | 'bound' | 'renewing' | 'rebinding' | 'timed-out';

export interface DhcpClientOptions {
  readonly mac: Uint8Array;
  /** A fresh transaction id (random, non-zero). */
  readonly xid: () => number;
  /** Give up after this long without a lease (NaCl: 10 s). */
  readonly timeoutMs?: number;
}

const INFINITE = 0xffffffff;
const PARAMETERS = [DhcpOption.SubnetMask, DhcpOption.Router, DhcpOption.DnsServer, DhcpOption.DomainName];
/** RFC 2131 4.4.5: retransmit in RENEWING/REBINDING no more often than this. */
const MIN_RENEW_RETRY_MS = 60_000;

export class DhcpClient {
  readonly counters = { discovers: 0, requests: 0, offers: 0, acks: 0, naks: 0, ignored: 0, malformed: 0, renewals: 0, expired: 0 };
  #state: DhcpState = 'selecting';
  #xid = 0;
  #startedAt = 0;
  /** The OFFER being requested: address, server, and its options as the fallback for the ACK's. */
  #offer: DhcpRepr | null = null;
  #lease: DhcpLease | null = null;
  #renewAt = 0;
  #rebindAt = 0;
  #expiresAt = 0;
  #nextRetry = 0;
  /** A lease was held and lost: negotiate with no time limit, backing off. */
  #renegotiating = false;
  #attempts = 0;
  /** The 10 s timeout of this negotiation was reported. */
  #timeoutSignalled = false;
  readonly #timeoutMs: number;

  constructor(private readonly options: DhcpClientOptions) {
    this.#timeoutMs = options.timeoutMs ?? 10_000;
  }

  get state(): DhcpState {
    return this.#state;
  }

  get lease(): DhcpLease | null {
    return this.#lease;
  }

  /** Starts negotiating: the first DISCOVER. */
  start(now: number): DhcpAction[] {
    this.#startedAt = now;
    this.#timeoutSignalled = false;
    this.#xid = this.#newXid();
    return [this.#discover()];
  }

  /** Called about once a second. */
  tick(now: number): DhcpAction[] {
    switch (this.#state) {
      case 'selecting':
      case 'requesting':
        if (now - this.#startedAt >= this.#timeoutMs && !this.#timeoutSignalled) {
          this.#timeoutSignalled = true;
          if (!this.#renegotiating) {
            this.#state = 'timed-out';
            return [{ kind: 'timeout', retrying: false }];
          }
          const actions: DhcpAction[] = [{ kind: 'timeout', retrying: true }];
          if (now >= this.#nextRetry) actions.push(...this.#retryDiscover(now));
          return actions;
        }
        if (now < this.#nextRetry) return [];
        return this.#retryDiscover(now);
      case 'bound':
      case 'renewing':
      case 'rebinding':
        return this.#leaseTick(now);
      case 'timed-out':
        return [];
    }
  }

  /** A UDP payload that arrived on port 68. */
  receive(payload: Uint8Array, now: number): DhcpAction[] {
    const m = DhcpRepr.parse(payload);
    if (typeof m === 'string') {
      this.counters.malformed++;
      return [];
    }
    if (m.op !== 2 || m.xid !== this.#xid || !macEquals(m.chaddr, 0, this.options.mac) || this.#state === 'timed-out') {
      this.counters.ignored++;
      return [];
    }
    if (m.messageType === DhcpMessageType.Offer && (this.#state === 'selecting' || this.#state === 'requesting')) return this.#onOffer(m);
    if (m.messageType === DhcpMessageType.Ack && this.#state !== 'bound') {
      this.#renegotiating = false;
      return this.#onAck(m, now);
    }
    if (m.messageType === DhcpMessageType.Nak && this.#state !== 'bound' && this.#state !== 'selecting') return this.#onNak(now);
    this.counters.ignored++;
    return [];
  }

  #onOffer(m: DhcpRepr): DhcpAction[] {
    // Router: option 3 or the server itself; an offer with neither is unusable (6.2).
    if (!usableAddress(m.yiaddr) || (m.routers.length === 0 && m.serverId === null)) {
      this.counters.ignored++;
      return [];
    }
    this.counters.offers++;
    this.#offer = m;
    this.#state = 'requesting';
    const r = this.#message(DhcpMessageType.Request);
    r.broadcast = true;
    r.requestedIp = m.yiaddr;
    r.serverId = m.serverId ?? m.routers[0]!;
    this.counters.requests++;
    return [{ kind: 'send', message: DhcpRepr.emit(r), src: 0, dst: INFINITE }];
  }

  #onAck(m: DhcpRepr, now: number): DhcpAction[] {
    const offer = this.#offer;
    const renewing = this.#lease !== null;
    const address = m.yiaddr || this.#lease?.address || 0;
    if (!usableAddress(address) || (!renewing && offer !== null && address !== offer.yiaddr)) {
      this.counters.ignored++;
      return [];
    }
    this.counters.acks++;
    // The ACK's options, else the OFFER's (upstream used only the OFFER's).
    const pick = <T>(own: T | null | undefined, fallback: T | null | undefined): T | null => own ?? fallback ?? null;
    const mask = pick(m.subnetMask, offer?.subnetMask) ?? classfulMask(address);
    const server = pick(m.serverId, offer?.serverId) ?? this.#lease?.server ?? 0;
    const gateway = m.routers[0] ?? offer?.routers[0] ?? this.#lease?.gateway ?? server;
    const dns = m.dnsServers[0] ?? offer?.dnsServers[0] ?? gateway;
    const leaseTime = pick(m.leaseTime, offer?.leaseTime) ?? INFINITE;
    const lease: DhcpLease = { address, prefix: prefixOf(mask), gateway, dns, server, leaseTime };
    this.#lease = lease;
    this.#state = 'bound';
    this.#offer = null;
    if (leaseTime === INFINITE) {
      this.#renewAt = this.#rebindAt = this.#expiresAt = Infinity;
    } else {
      const t1 = pick(m.renewalTime, offer?.renewalTime) ?? leaseTime / 2;
      const t2 = pick(m.rebindingTime, offer?.rebindingTime) ?? (leaseTime * 7) / 8;
      this.#renewAt = now + t1 * 1000;
      this.#rebindAt = now + Math.max(t1, t2) * 1000;
      this.#expiresAt = now + leaseTime * 1000;
    }
    return [{ kind: 'configure', lease }];
  }

  #onNak(now: number): DhcpAction[] {
    this.counters.naks++;
    return this.#restart(now);
  }

  #leaseTick(now: number): DhcpAction[] {
    const lease = this.#lease!;
    if (now >= this.#expiresAt) {
      this.counters.expired++;
      return this.#restart(now);
    }
    if (now >= this.#rebindAt && this.#state !== 'rebinding') {
      this.#state = 'rebinding';
      this.#nextRetry = now;
    } else if (now >= this.#renewAt && this.#state === 'bound') {
      this.#state = 'renewing';
      this.#nextRetry = now;
    }
    if (this.#state === 'bound' || now < this.#nextRetry) return [];
    // Retransmit at half the time left to the next deadline, at least a minute apart (RFC 2131 4.4.5).
    const deadline = this.#state === 'renewing' ? this.#rebindAt : this.#expiresAt;
    this.#nextRetry = now + Math.max(MIN_RENEW_RETRY_MS, (deadline - now) / 2);
    this.counters.renewals++;
    const r = this.#message(DhcpMessageType.Request);
    r.ciaddr = lease.address;
    // RENEWING asks the server that granted the lease; REBINDING any server.
    return [{ kind: 'send', message: DhcpRepr.emit(r), src: lease.address, dst: this.#state === 'renewing' ? lease.server : INFINITE }];
  }

  /** An OFFER whose ACK did not come (or no OFFER at all): start again. */
  #retryDiscover(now: number): DhcpAction[] {
    // 1 s, 2 s, 4 s ... 64 s between DISCOVERs; at boot, one a second as upstream.
    if (this.#renegotiating) this.#nextRetry = now + (1000 << Math.min(6, this.#attempts++)) - 100;
    return [this.#discover()];
  }

  /** The lease is gone (expired, or refused): unconfigure and negotiate again from the start. */
  #restart(now: number): DhcpAction[] {
    const had = this.#lease !== null;
    this.#lease = null;
    this.#offer = null;
    if (had) {
      this.#renegotiating = true;
      this.#attempts = 0;
      this.#nextRetry = now + 900;
    }
    const actions: DhcpAction[] = had ? [{ kind: 'unconfigure' }] : [];
    actions.push(...this.start(now));
    return actions;
  }

  #discover(): DhcpAction {
    this.#state = 'selecting';
    this.#offer = null;
    const r = this.#message(DhcpMessageType.Discover);
    r.broadcast = true;
    this.counters.discovers++;
    return { kind: 'send', message: DhcpRepr.emit(r), src: 0, dst: INFINITE };
  }

  #message(type: number) {
    const r = dhcpRequestRepr(type, this.#xid, this.options.mac);
    r.clientId = Uint8Array.of(1, ...this.options.mac);
    r.parameterRequestList = PARAMETERS;
    return r;
  }

  #newXid(): number {
    for (;;) {
      const xid = this.options.xid() >>> 0;
      if (xid !== 0) return xid;
    }
  }
}

/** A unicast host address a server may hand out: not 0/8, loopback, multicast, class E or broadcast. */
function usableAddress(a: number): boolean {
  const first = a >>> 24;
  return first !== 0 && first !== 127 && first < 224;
}

/** Contiguous masks only; anything else is read as its leading ones. */
function prefixOf(mask: number): number {
  return Math.clz32(~mask >>> 0);
}

/** The mask of an address's class when a server sends none (RFC 2131 leaves it to the client). */
function classfulMask(address: number): number {
  const first = address >>> 24;
  return first < 128 ? 0xff000000 : first < 192 ? 0xffff0000 : 0xffffff00;
}
