import { prng } from '../../appliances/random-packets.ts';
import { PortAllocator } from '../../runtime/port-allocator.ts';
import type { TcpEvent } from '../../runtime/tcp/connection.ts';
import { TcpStack, type TcpSocket } from '../../runtime/tcp/stack.ts';
import { TcpFlag, type TcpRepr } from '../../runtime/wire/tcp.ts';
import { parseIpv4Address } from '../../runtime/wire/ipv4.ts';

/**
 * TCP stacks joined by an ideal network with a manual clock: segments go
 * from stack to stack by address, in order, without IP. A segment nothing
 * takes is answered with RST, as a real host's closed port would; a segment
 * to an address no stack has is lost (a host that is gone).
 */
export class TcpNet {
  now = 0;
  readonly stacks = new Map<number, TcpStack>();
  private readonly queue: { src: number; dst: number; segment: TcpRepr }[] = [];
  private readonly tickers: ((now: number) => void)[] = [];
  /** One seeded generator for every stack's ports and ISN secret, so runs repeat. */
  private readonly random = prng(1);

  stack(address: string, maxTimeWait?: number, ports?: PortAllocator): TcpStack {
    const a = parseIpv4Address(address)!;
    const random = this.random;
    const stack = new TcpStack({
      address: () => a,
      send: (remote, segment) => this.queue.push({ src: a, dst: remote, segment: { ...segment, payload: segment.payload.slice() } }),
      now: () => this.now,
      ports: ports ?? new PortAllocator(random),
      random,
      ...(maxTimeWait !== undefined ? { maxTimeWait } : {}),
    });
    this.stacks.set(a, stack);
    this.tickers.push((now) => stack.tick(now));
    return stack;
  }

  /** The host at this address is gone: what is sent to it is lost. */
  unplug(address: string): void {
    this.stacks.delete(parseIpv4Address(address)!);
  }

  onTick(fn: (now: number) => void): void {
    this.tickers.push(fn);
  }

  /** Delivers every segment in flight, and what they cause. */
  settle(): void {
    for (let n = 0; this.queue.length > 0; n++) {
      if (n > 1_000_000) throw new Error('the network never settles');
      const { src, dst, segment } = this.queue.shift()!;
      const stack = this.stacks.get(dst);
      if (stack && !stack.receiveSegment(src, segment) && !(segment.flags & TcpFlag.Rst)) this.queue.push({ src: dst, dst: src, segment: resetFor(segment) });
    }
  }

  /** Lets `ms` pass in 50 ms steps, running timers and delivering segments. */
  advance(ms: number): void {
    this.settle();
    for (let t = 0; t < ms; t += 50) {
      this.now += 50;
      for (const tick of this.tickers) tick(this.now);
      this.settle();
    }
  }
}

function resetFor(s: TcpRepr): TcpRepr {
  const length = s.payload.length + (s.flags & TcpFlag.Syn ? 1 : 0) + (s.flags & TcpFlag.Fin ? 1 : 0);
  return s.flags & TcpFlag.Ack
    ? { srcPort: s.dstPort, dstPort: s.srcPort, seq: s.ack, ack: 0, flags: TcpFlag.Rst, window: 0, payload: new Uint8Array(0) }
    : { srcPort: s.dstPort, dstPort: s.srcPort, seq: 0, ack: (s.seq + length) >>> 0, flags: TcpFlag.Rst | TcpFlag.Ack, window: 0, payload: new Uint8Array(0) };
}

/** A client connection: sends `send`, then closes its side (like `nc -N`) unless `keepOpen`, and keeps what it receives. */
export interface Client {
  readonly socket: TcpSocket;
  received(): string;
  bytes(): Uint8Array;
  events: string[];
  /** Stops reading: the receive buffer fills and the window closes. */
  pause(): void;
  resume(): void;
}

export function client(stack: TcpStack, address: string, port: number, send?: Uint8Array | string, keepOpen = false): Client {
  const chunks: Uint8Array[] = [];
  const events: string[] = [];
  let pending = typeof send === 'string' ? new TextEncoder().encode(send) : (send ?? new Uint8Array(0));
  let done = false;
  let reading = true;
  const socket: TcpSocket = stack.connect(parseIpv4Address(address)!, port, (e: TcpEvent) => {
    events.push(e.kind === 'reset' ? `reset:${e.reason}` : e.kind);
    const c = socket.connection;
    if ((e.kind === 'connected' || e.kind === 'writable') && !done) {
      pending = pending.subarray(c.write(pending));
      if (pending.length === 0) {
        done = true;
        if (!keepOpen) c.close();
      }
    }
    if (e.kind === 'readable' && reading) chunks.push(c.read());
  })!;
  const bytes = () => new Uint8Array(Buffer.concat(chunks));
  return {
    socket,
    events,
    bytes,
    received: () => new TextDecoder().decode(bytes()),
    pause: () => (reading = false),
    resume: () => {
      reading = true;
      if (socket.connection.readable > 0) chunks.push(socket.connection.read());
    },
  };
}

/**
 * A backend on `port`: answers each connection with its name, then echoes
 * what the client sends, and closes when the client has closed.
 */
export function echoServer(stack: TcpStack, port: number, name: string): { connections: number } {
  const state = { connections: 0 };
  stack.listen(port, {
    accept(socket) {
      state.connections++;
      const c = socket.connection;
      let out = new TextEncoder().encode(`${name}\n`);
      let ended = false;
      const flush = () => {
        out = out.subarray(c.write(out));
        if (ended && out.length === 0) c.close();
      };
      socket.onEvent = (e) => {
        if (e.kind === 'readable') {
          const data = c.read();
          const joined = new Uint8Array(out.length + data.length);
          joined.set(out);
          joined.set(data, out.length);
          out = joined;
          flush();
        }
        if (e.kind === 'writable') flush();
        if (e.kind === 'end') {
          ended = true;
          flush();
        }
      };
      flush();
    },
  });
  return state;
}
