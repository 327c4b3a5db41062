import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ownMac } from './mac.ts';
import type { Nic } from './nic.ts';
import { ifnameProblem } from './spec.ts';

/**
 * The `tap:IFNAME` driver: a Linux TAP device. The native addon
 * (tap-native/tap.c) opens the device and polls its fd on the event loop;
 * each wake-up delivers up to 64 frames in one `onReceive` call.
 *
 * The appliance is a host of its own on the TAP's link: `mac` is the
 * appliance's address (chosen by the caller), `kernelMac` the address of the
 * kernel's side of the device. The driver passes frames unchanged either way.
 */
export interface TapNic extends Nic {
  /** The device's name (the kernel's choice when the name was a "%d" template). */
  readonly name: string;
  /** The MAC of the kernel's end of the device, as `ip link` shows it. */
  readonly kernelMac: Uint8Array;
  /** Whether this open created the device (it did not exist before). */
  readonly created: boolean;
  /** Why receiving stopped (the device was deleted under us), if it did. */
  readonly error: string | undefined;
}

export interface TapOptions {
  /** The appliance's MAC; a random locally administered one by default. */
  mac?: Uint8Array;
  /**
   * Bring the link up (ioctl SIOCSIFFLAGS, in the calling process's network
   * namespace) when it is down. Default true: a down TAP moves no frames.
   * Pass false to configure the device yourself, e.g. after moving it to
   * another namespace, which takes it down anyway.
   */
  up?: boolean;
  /**
   * true: keep the device after close. false: delete it on close even if it
   * existed before. Default: leave it as it is - a device this open creates
   * vanishes on close, one made beforehand (`ip tuntap add`) stays.
   */
  persist?: boolean;
}

/** Opens (creating it if missing) the TAP device `name`. Throws a readable Error if it cannot. */
export function openTap(name: string, options: TapOptions = {}): TapNic {
  const problem = ifnameProblem(name);
  if (problem !== undefined) throw Object.assign(new Error(`cannot open TAP device: ${problem}`), { code: 'EINVAL' });
  const mac = ownMac(options.mac);
  const persist = options.persist === undefined ? -1 : options.persist ? 1 : 0;
  const addon = loadAddon();
  const opened = addon.open(name, persist, options.up ?? true);
  return new TapDevice(addon, opened, mac);
}

interface Opened {
  handle: unknown;
  name: string;
  mac: Uint8Array;
  mtu: number;
  created: boolean;
}

/** What tap-native/tap.c exports. */
interface TapAddon {
  open(name: string, persist: -1 | 0 | 1, up: boolean): Opened;
  /** Each wake-up: the frames' bytes back to back in `batch`, their lengths in `lengths`. */
  start(handle: unknown, callback: (batch: ArrayBuffer, lengths: Uint32Array, error: string | undefined) => void): void;
  /** Adds [frames, bytes, dropped, errors] of this call to `totals`. */
  send(handle: unknown, frames: readonly Uint8Array[], totals: Float64Array): void;
  close(handle: unknown): void;
}

class TapDevice implements TapNic {
  readonly mac: Uint8Array;
  readonly name: string;
  readonly kernelMac: Uint8Array;
  readonly mtu: number;
  readonly created: boolean;
  readonly counters = {
    rx_frames: 0,
    rx_bytes: 0,
    rx_batches: 0,
    rx_errors: 0,
    tx_frames: 0,
    tx_bytes: 0,
    tx_dropped: 0,
    tx_errors: 0,
  };
  readonly #addon: TapAddon;
  readonly #handle: unknown;
  readonly #totals = new Float64Array(4);
  #handler: ((frames: readonly Uint8Array[]) => void) | undefined;
  #closed = false;
  #error: string | undefined;

  constructor(addon: TapAddon, opened: Opened, mac: Uint8Array) {
    this.#addon = addon;
    this.mac = mac;
    this.#handle = opened.handle;
    this.name = opened.name;
    this.kernelMac = Uint8Array.from(opened.mac); // a plain Uint8Array, not the addon's Buffer, like `mac`
    this.mtu = opened.mtu;
    this.created = opened.created;
  }

  send(frames: readonly Uint8Array[]): void {
    if (this.#closed) {
      this.counters.tx_dropped += frames.length;
      return;
    }
    const t = this.#totals;
    this.#addon.send(this.#handle, frames, t);
    const c = this.counters;
    c.tx_frames = t[0]!;
    c.tx_bytes = t[1]!;
    c.tx_dropped = t[2]!;
    c.tx_errors = t[3]!;
  }

  // Polling starts with the first handler: until then frames wait in the
  // kernel's queue for the device instead of being read and thrown away.
  onReceive(handler: (frames: readonly Uint8Array[]) => void): void {
    const first = this.#handler === undefined;
    this.#handler = handler;
    if (first && !this.#closed) this.#addon.start(this.#handle, (batch, lengths, error) => this.#received(batch, lengths, error));
  }

  get error(): string | undefined {
    return this.#error;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#addon.close(this.#handle);
  }

  #received(batch: ArrayBuffer, lengths: Uint32Array, error: string | undefined): void {
    const c = this.counters;
    if (error !== undefined) {
      c.rx_errors++;
      this.#error = `receiving from ${this.name} stopped: ${error}`;
    }
    if (lengths.length === 0) return;
    const frames: Uint8Array[] = [];
    let offset = 0;
    for (let i = 0; i < lengths.length; i++) {
      frames.push(new Uint8Array(batch, offset, lengths[i]!));
      offset += lengths[i]!;
    }
    c.rx_batches++;
    c.rx_frames += frames.length;
    c.rx_bytes += offset;
    this.#handler!(frames);
  }
}

const ADDON = join('build', 'Release', 'nacl_tap.node');
let addon: TapAddon | undefined;

// Loaded on the first TAP open only, so every other command runs on a
// machine where the addon was never built. The addon sits in build/ at the
// package root, found by walking up from this module: that works from the
// source tree, from dist/ and from a bundle in node_modules/.cache alike.
function loadAddon(): TapAddon {
  if (addon !== undefined) return addon;
  if (process.platform !== 'linux') throw new Error(`TAP devices are Linux only (this is ${process.platform})`);
  const load = createRequire(import.meta.url);
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const file = join(dir, ADDON);
    if (existsSync(file)) return (addon = load(file) as TapAddon);
    if (dirname(dir) === dir) break;
  }
  throw new Error(
    `the TAP driver's native addon (${ADDON}) is not built: run \`npm run build:native\` (needs python3, make and a C compiler)`,
  );
}
