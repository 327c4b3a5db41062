import { createSocket, type Socket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { ownMac } from './mac.ts';
import type { Nic } from './nic.ts';

/**
 * The `udp:LOCALPORT,HOST:PORT` driver: Ethernet frames carried one per UDP
 * datagram, with nothing around them. That is the format of QEMU's
 * `-netdev socket,udp=HOST:PORT,localaddr=ADDR:LOCALPORT` (net/socket.c),
 * so a VM's NIC and the appliance can be wired together without root.
 */
export interface UdpNic extends Nic {
  /** The bound port (the system's choice when 0 was asked for). */
  readonly localPort: number;
  readonly localAddress: string;
  /** The peer's address after name resolution. */
  readonly remoteAddress: string;
  readonly remotePort: number;
}

export interface UdpNicOptions {
  /** The appliance's MAC; a random locally administered one by default. */
  mac?: Uint8Array;
  /** Largest IP packet the link carries; default 1500. */
  mtu?: number;
  /**
   * Address to bind. Default: the loopback address when the peer is on
   * loopback (a VM on this host: nothing else can reach the port), all
   * addresses otherwise.
   */
  localAddress?: string;
  /** Frames waiting in the socket's send queue beyond which new ones are dropped; default 256. */
  sendQueueLimit?: number;
}

const ETHERNET_HEADER = 14;

/** Binds the local port and connects to the peer. Rejects with a readable Error if it cannot. */
export async function openUdpNic(
  localPort: number,
  remoteHost: string,
  remotePort: number,
  options: UdpNicOptions = {},
): Promise<UdpNic> {
  const mac = ownMac(options.mac);
  const remote = await lookup(remoteHost).catch((e: Error) => {
    throw new Error(`udp NIC: cannot resolve '${remoteHost}': ${e.message}`);
  });
  const v6 = remote.family === 6;
  const localAddress = options.localAddress ?? (isLoopback(remote.address) ? (v6 ? '::1' : '127.0.0.1') : v6 ? '::' : '0.0.0.0');
  const socket = createSocket({ type: v6 ? 'udp6' : 'udp4' });
  try {
    await settle(socket, (done) => socket.bind({ port: localPort, address: localAddress, exclusive: true }, done));
    // Connected: the kernel then delivers only the peer's datagrams, so no
    // other host can inject frames, and send() needs no address lookup.
    await settle(socket, (done) => socket.connect(remotePort, remote.address, done));
  } catch (e) {
    socket.close();
    const err = e as NodeJS.ErrnoException;
    const why = err.code === 'EADDRINUSE' ? 'the port is already in use' : err.message;
    throw Object.assign(new Error(`udp NIC: cannot use ${localAddress}:${localPort} to reach ${remote.address}:${remotePort}: ${why}`), {
      code: err.code,
    });
  }
  return new UdpDevice(socket, mac, options.mtu ?? 1500, options.sendQueueLimit ?? 256, remote.address, remotePort);
}

class UdpDevice implements UdpNic {
  readonly mac: Uint8Array;
  readonly mtu: number;
  readonly localPort: number;
  readonly localAddress: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly counters = {
    rx_frames: 0,
    rx_bytes: 0,
    rx_dropped_short: 0,
    rx_dropped_no_handler: 0,
    tx_frames: 0,
    tx_bytes: 0,
    tx_dropped: 0,
    tx_errors: 0,
    socket_errors: 0,
  };
  readonly #socket: Socket;
  readonly #sendQueueLimit: number;
  #handler: ((frames: readonly Uint8Array[]) => void) | undefined;
  #closed: Promise<void> | undefined;

  constructor(socket: Socket, mac: Uint8Array, mtu: number, sendQueueLimit: number, remoteAddress: string, remotePort: number) {
    this.#socket = socket;
    this.#sendQueueLimit = sendQueueLimit;
    this.mac = mac;
    this.mtu = mtu;
    const local = socket.address();
    this.localPort = local.port;
    this.localAddress = local.address;
    this.remoteAddress = remoteAddress;
    this.remotePort = remotePort;
    socket.on('message', (frame) => this.#received(frame));
    // ECONNREFUSED while the peer is not listening yet, and the like: the
    // link is simply down for now, which is no reason to crash.
    socket.on('error', () => this.counters.socket_errors++);
  }

  send(frames: readonly Uint8Array[]): void {
    for (const frame of frames) {
      if (this.#closed !== undefined || this.#socket.getSendQueueCount() >= this.#sendQueueLimit) {
        this.counters.tx_dropped++;
        continue;
      }
      // A copy: when the kernel's buffer is full, Node queues the datagram
      // and reads it later, but the caller may reuse `frame` at once.
      this.#socket.send(Buffer.from(frame), this.#sent);
    }
  }

  onReceive(handler: (frames: readonly Uint8Array[]) => void): void {
    this.#handler = handler;
  }

  close(): Promise<void> {
    this.#closed ??= new Promise((resolve) => this.#socket.close(() => resolve()));
    return this.#closed;
  }

  // Counted on completion, so tx_frames says what left, not what was asked.
  readonly #sent = (error: Error | null, bytes: number): void => {
    if (error !== null) this.counters.tx_errors++;
    else {
      this.counters.tx_frames++;
      this.counters.tx_bytes += bytes;
    }
  };

  // Each datagram is delivered as a batch of one, as it arrives.
  #received(frame: Buffer): void {
    const c = this.counters;
    if (frame.length < ETHERNET_HEADER) c.rx_dropped_short++;
    else if (this.#handler === undefined) c.rx_dropped_no_handler++;
    else {
      c.rx_frames++;
      c.rx_bytes += frame.length;
      this.#handler([frame]);
    }
  }
}

/** Runs a callback-style socket operation, turning an 'error' event meanwhile into a rejection. */
function settle(socket: Socket, start: (done: () => void) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    socket.once('error', reject);
    start(() => {
      socket.off('error', reject);
      resolve();
    });
  });
}

function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1' || address.startsWith('::ffff:127.');
}
