import { ETHERNET_HEADER_LEN, formatMac, isMulticastMac, MAC_LEN } from '../wire/ethernet.ts';
import { ownMac } from './mac.ts';
import type { Nic } from './nic.ts';

/**
 * The `memory:NAME` driver: NICs joined inside one process, by a cable
 * (`wire(a, b)`) or through a learning switch, for simulation and tests.
 *
 * The naming model: a name denotes a switch. `memory:NAME` opens a NIC and
 * plugs it into the switch called NAME of the process-wide `memoryNetwork`,
 * creating the switch on first use. Code in the same process reaches that
 * segment with `memoryNetwork.switch('a')` (or `.get('a')`, which does not
 * create it) and plugs its own NICs into it - simulated hosts, a second
 * appliance, a test's probe. Two appliances booted with `--nic 0=memory:a`
 * thus share one Ethernet segment, and a third party can join it at any time.
 *
 * Delivery is asynchronous: a sent frame is copied into the receiver's queue
 * and handed over on a later turn of the event loop (setImmediate), so a
 * sender is never re-entered by its own receiver. Everything queued for a NIC
 * before that turn arrives as one batch. `MemoryNetwork.flush()` runs the
 * pending deliveries synchronously instead, for deterministic tests.
 */
export interface MemoryNic extends Nic {
  /** For messages and `MemorySwitch.table()`. */
  readonly name: string;
  /** The network whose delivery turns this NIC's received frames wait for. */
  readonly network: MemoryNetwork;
  /** The switch or NIC this one is plugged into, if any. */
  readonly link: MemorySwitch | MemoryNic | undefined;
  readonly counters: MemoryNicCounters;
}

export interface MemoryNicCounters {
  [name: string]: number;
  rx_frames: number;
  rx_bytes: number;
  rx_batches: number;
  /** Arrived while the receive queue held `queueLimit` frames already. */
  rx_dropped_queue_full: number;
  tx_frames: number;
  tx_bytes: number;
  /** Sent while plugged into nothing or after close: no carrier. */
  tx_dropped: number;
  /** Shorter than an Ethernet header, so no switch could forward it. */
  tx_dropped_short: number;
}

export interface MemoryNicOptions {
  /** For messages and `MemorySwitch.table()`. */
  name: string;
  /** A random locally administered one by default. */
  mac?: Uint8Array;
  /** Largest IP packet the link carries; default 1500. */
  mtu?: number;
  /** Received frames held until delivered, beyond which new ones are dropped; default the network's. */
  queueLimit?: number;
  /** Default: `memoryNetwork`. */
  network?: MemoryNetwork;
}

export interface MemoryNetworkOptions {
  /** Milliseconds, for the switches' ageing; default `performance.now()`. */
  clock?: () => number;
  /** Default receive queue bound of this network's NICs, in frames; default 4096. */
  queueLimit?: number;
  /** How long a switch remembers a source MAC, in milliseconds; default 300 s (IEEE 802.1D). */
  ageingTime?: number;
}

export interface MemorySwitchOptions {
  name?: string;
  /** Milliseconds; default `performance.now()`. */
  clock?: () => number;
  /** How long a source MAC is remembered after it was last seen, in milliseconds; default 300 s (IEEE 802.1D-2004 table 7-5). */
  ageingTime?: number;
}

const DEFAULT_QUEUE_LIMIT = 4096;
const DEFAULT_AGEING_MS = 300_000;
const SRC = MAC_LEN;

/**
 * A registry of named switches plus the delivery turns of the NICs created
 * in it. Tests make their own (with a fake clock); `memory:NAME` uses the
 * process-wide `memoryNetwork`.
 */
export class MemoryNetwork {
  readonly clock: () => number;
  readonly queueLimit: number;
  readonly ageingTime: number;
  readonly #switches = new Map<string, MemorySwitch>();
  /** NICs with queued frames and a handler, in the order their first frame arrived. */
  readonly #ready = new Set<MemoryDevice>();
  #turn: NodeJS.Immediate | undefined;
  #delivering = false;

  constructor(options: MemoryNetworkOptions = {}) {
    this.clock = options.clock ?? (() => performance.now());
    this.queueLimit = checkLimit(options.queueLimit ?? DEFAULT_QUEUE_LIMIT);
    this.ageingTime = options.ageingTime ?? DEFAULT_AGEING_MS;
  }

  /** The switch called `name`, created (with this network's clock) on first use. */
  switch(name: string): MemorySwitch {
    let sw = this.#switches.get(name);
    if (sw === undefined) {
      sw = new MemorySwitch({ name, clock: this.clock, ageingTime: this.ageingTime });
      this.#switches.set(name, sw);
    }
    return sw;
  }

  /** The switch called `name` if some NIC or code created it. */
  get(name: string): MemorySwitch | undefined {
    return this.#switches.get(name);
  }

  names(): string[] {
    return [...this.#switches.keys()];
  }

  /** Forgets the switch called `name` after unplugging every NIC from it. */
  delete(name: string): boolean {
    const sw = this.#switches.get(name);
    if (sw === undefined) return false;
    for (const port of sw.ports) detach(port);
    return this.#switches.delete(name);
  }

  /** A NIC of this network, plugged into nothing yet. */
  createNic(options: Omit<MemoryNicOptions, 'network'>): MemoryNic {
    return new MemoryDevice(this, options);
  }

  /** What `memory:NAME` opens: a new NIC plugged into switch `name`. */
  open(name: string, options: { name?: string; mac?: Uint8Array; mtu?: number; queueLimit?: number } = {}): MemoryNic {
    const sw = this.switch(name);
    const nic = this.createNic({ ...options, name: options.name ?? `${name}.${sw.ports.length}` });
    attach(nic, sw);
    return nic;
  }

  /** Joins two unplugged NICs with a cable. */
  wire(a: MemoryNic, b: MemoryNic): void {
    attach(a, b);
  }

  /** Whether some NIC of this network has frames waiting for a delivery turn. */
  get pending(): boolean {
    return this.#ready.size > 0;
  }

  /**
   * Runs delivery turns now, until no frame is left, and returns how many
   * turns it took. Frames a receiver sends in turn N arrive in turn N+1, as
   * they would asynchronously. Throws when traffic has not died down after
   * `maxTurns` (two NICs answering each other forever), and when called from
   * a receive handler, which would re-enter the delivery in progress.
   */
  flush(maxTurns = 10_000): number {
    if (this.#delivering) throw new Error('MemoryNetwork.flush() called from a receive handler');
    if (this.#turn !== undefined) clearImmediate(this.#turn);
    this.#turn = undefined;
    let turns = 0;
    while (this.#ready.size > 0) {
      if (turns === maxTurns) {
        this.#schedule();
        throw new Error(`memory network: frames still flowing after ${maxTurns} delivery turns`);
      }
      turns++;
      this.#deliver();
    }
    return turns;
  }

  /** Called by a NIC whose queue went from empty to not, or that got a handler. */
  ready(nic: MemoryDevice): void {
    this.#ready.add(nic);
    this.#schedule();
  }

  #schedule(): void {
    if (this.#turn === undefined && !this.#delivering) this.#turn = setImmediate(this.#onTurn);
  }

  readonly #onTurn = (): void => {
    this.#turn = undefined;
    this.#deliver();
  };

  // Every queue is taken before any handler runs, so that frames sent by a
  // handler wait for the next turn whichever NIC they are for. A handler
  // that throws does not cost the other receivers their batch: the first
  // error is rethrown once the turn is over.
  #deliver(): void {
    const batches = [...this.#ready].map((nic) => [nic, nic.takeQueue()] as const);
    this.#ready.clear();
    this.#delivering = true;
    let failure: { error: unknown } | undefined;
    try {
      for (const [nic, frames] of batches) {
        try {
          nic.hand(frames);
        } catch (error) {
          failure ??= { error };
        }
      }
    } finally {
      this.#delivering = false;
      if (this.#ready.size > 0) this.#schedule();
    }
    if (failure !== undefined) throw failure.error;
  }
}

/** The network `memory:NAME` plugs into. */
export const memoryNetwork = new MemoryNetwork();

/** A NIC of `options.network` (default `memoryNetwork`), plugged into nothing yet. */
export function createMemoryNic(options: MemoryNicOptions): MemoryNic {
  return new MemoryDevice(options.network ?? memoryNetwork, options);
}

/** The `memory:NAME` driver: a new NIC on switch `name` of `network`. */
export function openMemoryNic(
  name: string,
  options: { name?: string; mac?: Uint8Array; mtu?: number; queueLimit?: number } = {},
  network: MemoryNetwork = memoryNetwork,
): MemoryNic {
  return network.open(name, options);
}

/**
 * Plugs `nic` into a switch port, or cables it to another NIC. Both ends
 * must be free: moving a NIC is `detach` then `attach`.
 */
export function attach(nic: MemoryNic, to: MemorySwitch | MemoryNic): void {
  const device = own(nic);
  if (device.closed) throw new Error(`memory NIC ${nic.name} is closed`);
  if (device.link !== undefined) throw new Error(`memory NIC ${nic.name} is already plugged into ${device.link.name}`);
  if (to instanceof MemorySwitch) {
    to.plug(device);
    device.link = to;
    return;
  }
  const peer = own(to);
  if (peer === device) throw new Error(`memory NIC ${nic.name} cannot be wired to itself`);
  if (peer.closed) throw new Error(`memory NIC ${peer.name} is closed`);
  if (peer.link !== undefined) throw new Error(`memory NIC ${peer.name} is already plugged into ${peer.link.name}`);
  device.link = peer;
  peer.link = device;
}

/** Unplugs `nic` (the link goes down); frames already queued for it are still delivered. */
export function detach(nic: MemoryNic): void {
  const device = own(nic);
  const link = device.link;
  if (link === undefined) return;
  device.link = undefined;
  if (link instanceof MemorySwitch) link.unplug(device);
  else if (link instanceof MemoryDevice) link.link = undefined;
}

function own(nic: MemoryNic): MemoryDevice {
  if (!(nic instanceof MemoryDevice)) throw new TypeError('not a memory NIC: use createMemoryNic()');
  return nic;
}

class MemoryDevice implements MemoryNic {
  readonly name: string;
  readonly network: MemoryNetwork;
  readonly mac: Uint8Array;
  readonly mtu: number;
  readonly counters: MemoryNicCounters = {
    rx_frames: 0,
    rx_bytes: 0,
    rx_batches: 0,
    rx_dropped_queue_full: 0,
    tx_frames: 0,
    tx_bytes: 0,
    tx_dropped: 0,
    tx_dropped_short: 0,
  };
  link: MemorySwitch | MemoryDevice | undefined;
  closed = false;
  readonly #queueLimit: number;
  #queue: Uint8Array[] = [];
  #handler: ((frames: readonly Uint8Array[]) => void) | undefined;

  constructor(network: MemoryNetwork, options: Omit<MemoryNicOptions, 'network'>) {
    this.network = network;
    this.name = options.name;
    this.mac = ownMac(options.mac);
    this.mtu = options.mtu ?? 1500;
    this.#queueLimit = options.queueLimit === undefined ? network.queueLimit : checkLimit(options.queueLimit);
  }

  send(frames: readonly Uint8Array[]): void {
    const c = this.counters;
    const link = this.link;
    for (const frame of frames) {
      if (link === undefined) c.tx_dropped++;
      else if (frame.length < ETHERNET_HEADER_LEN) c.tx_dropped_short++;
      else {
        c.tx_frames++;
        c.tx_bytes += frame.length;
        if (link instanceof MemorySwitch) link.forward(frame, this);
        else link.arrive(frame);
      }
    }
  }

  // Until the first handler, frames wait in the queue (up to its bound), as
  // they wait in a real NIC's ring until the driver polls it.
  onReceive(handler: (frames: readonly Uint8Array[]) => void): void {
    this.#handler = handler;
    if (this.#queue.length > 0 && !this.closed) this.network.ready(this);
  }

  close(): void {
    if (this.closed) return;
    detach(this);
    this.closed = true;
    this.#queue = [];
  }

  /** A copy of `frame` joins the receive queue: the sender may reuse its buffer. */
  arrive(frame: Uint8Array): void {
    if (this.#queue.length >= this.#queueLimit) {
      this.counters.rx_dropped_queue_full++;
      return;
    }
    this.#queue.push(new Uint8Array(frame)); // a copy, a plain Uint8Array even for a Buffer
    if (this.#queue.length === 1 && this.#handler !== undefined) this.network.ready(this);
  }

  takeQueue(): Uint8Array[] {
    const frames = this.#queue;
    this.#queue = [];
    return frames;
  }

  hand(frames: Uint8Array[]): void {
    if (frames.length === 0 || this.closed || this.#handler === undefined) return;
    const c = this.counters;
    c.rx_batches++;
    c.rx_frames += frames.length;
    for (const frame of frames) c.rx_bytes += frame.length;
    this.#handler(frames);
  }
}

interface Station {
  port: MemoryDevice;
  seen: number;
}

/**
 * A transparent learning bridge (IEEE 802.1D section 7): it learns which
 * port each unicast source MAC sits behind, forwards a frame for a known
 * unicast destination to that port alone, and floods broadcast, multicast
 * and unknown destinations to every other port. A frame whose destination
 * sits behind the port it came from is filtered. It reads the two MAC
 * addresses only, so 802.1Q-tagged frames pass like any others (one
 * learning table for all VLANs, as a VLAN-unaware bridge has).
 *
 * Entries age out `ageingTime` ms after their station was last heard from,
 * by the injected clock, so tests control ageing completely.
 */
export class MemorySwitch {
  readonly name: string;
  readonly ageingTime: number;
  readonly counters = {
    rx_frames: 0,
    forwarded: 0,
    flooded: 0,
    filtered: 0,
    learned: 0,
    aged_out: 0,
  };
  readonly #clock: () => number;
  readonly #ports: MemoryDevice[] = [];
  /** Keyed by the MAC as a 48-bit number. */
  readonly #stations = new Map<number, Station>();

  constructor(options: MemorySwitchOptions = {}) {
    this.name = options.name ?? 'switch';
    this.#clock = options.clock ?? (() => performance.now());
    this.ageingTime = options.ageingTime ?? DEFAULT_AGEING_MS;
  }

  get ports(): readonly MemoryNic[] {
    return [...this.#ports];
  }

  /** What the switch has learned and not yet forgotten, for messages and tests. */
  table(): { mac: string; port: string; age: number }[] {
    const now = this.#clock();
    this.#expire(now);
    return [...this.#stations.entries()].map(([key, s]) => ({ mac: formatMac(macBytes(key)), port: s.port.name, age: now - s.seen }));
  }

  /** Used by `attach`. */
  plug(port: MemoryDevice): void {
    this.#ports.push(port);
  }

  /** Used by `detach`: the port and what was learned on it go. */
  unplug(port: MemoryDevice): void {
    const i = this.#ports.indexOf(port);
    if (i >= 0) this.#ports.splice(i, 1);
    for (const [key, s] of this.#stations) if (s.port === port) this.#stations.delete(key);
  }

  /** A frame of at least an Ethernet header, from the NIC on port `from`. */
  forward(frame: Uint8Array, from: MemoryDevice): void {
    const c = this.counters;
    c.rx_frames++;
    const now = this.#clock();
    if (!isMulticastMac(frame, SRC)) this.#learn(macKey(frame, SRC), from, now);
    const to = isMulticastMac(frame, 0) ? undefined : this.#lookup(macKey(frame, 0), now);
    if (to === from) c.filtered++;
    else if (to !== undefined) {
      c.forwarded++;
      to.arrive(frame);
    } else {
      c.flooded++;
      for (const port of this.#ports) if (port !== from) port.arrive(frame);
    }
  }

  #learn(key: number, port: MemoryDevice, now: number): void {
    const s = this.#stations.get(key);
    if (s === undefined) {
      this.counters.learned++;
      this.#stations.set(key, { port, seen: now });
    } else {
      s.port = port;
      s.seen = now;
    }
  }

  #lookup(key: number, now: number): MemoryDevice | undefined {
    const s = this.#stations.get(key);
    if (s === undefined) return undefined;
    if (now - s.seen <= this.ageingTime) return s.port;
    this.#stations.delete(key);
    this.counters.aged_out++;
    return undefined;
  }

  #expire(now: number): void {
    for (const [key, s] of this.#stations) {
      if (now - s.seen > this.ageingTime) {
        this.#stations.delete(key);
        this.counters.aged_out++;
      }
    }
  }
}

/** 48 bits fit a double exactly; a number key spares a string per frame. */
function macKey(bytes: Uint8Array, at: number): number {
  return (bytes[at]! * 0x10000 + ((bytes[at + 1]! << 8) | bytes[at + 2]!)) * 0x1000000 + ((bytes[at + 3]! << 16) | (bytes[at + 4]! << 8) | bytes[at + 5]!);
}

function macBytes(key: number): Uint8Array {
  const mac = new Uint8Array(MAC_LEN);
  for (let i = MAC_LEN - 1; i >= 0; i--) {
    mac[i] = key % 256;
    key = Math.floor(key / 256);
  }
  return mac;
}

function checkLimit(limit: number): number {
  if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`a memory NIC's queue limit is a whole number of frames from 1, got ${limit}`);
  return limit;
}
