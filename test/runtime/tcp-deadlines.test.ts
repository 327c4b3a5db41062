/** A stress of the one-shot TCP timer scheme: ticking only at TcpStack.soonest must match ticking every ms (it catches an RTO armed without timerArmed). */
import { describe, expect, it } from 'vitest';
import { PortAllocator } from '../../runtime/port-allocator.ts';
import { prng } from '../../appliances/random-packets.ts';
import { TcpStack, type TcpSocket } from '../../runtime/tcp/stack.ts';
import type { TcpRepr } from '../../runtime/wire/tcp.ts';

function run(seed: number, mode: 'deadline' | 'every', connections = 6, size = 200_000) {
  const r = prng(seed);
  let now = 0;
  const inflight: { at: number; src: number; dst: number; seg: TcpRepr }[] = [];
  const stacks = new Map<number, TcpStack>();
  const loss = 0.05 + r() * 0.2;
  const mk = (a: number) => {
    const s = new TcpStack({
      address: () => a,
      send: (remote, seg) => {
        if (r() < loss) return;
        inflight.push({ at: now + 3 + Math.floor(r() * 8), src: a, dst: remote, seg: { ...seg, payload: seg.payload.slice() } });
      },
      now: () => now,
      ports: new PortAllocator(r),
      random: r,
    });
    stacks.set(a, s);
    return s;
  };
  const A = 0x0a000001, B = 0x0a000002;
  const sa = mk(A), sb = mk(B);
  const got: number[] = [];
  const want: number[] = [];
  const evs: string[] = [];
  // B: a server that sends back what it gets, and closes when the peer does.
  sb.listen(80, { accept(s) {
    const c = s.connection;
    let out = new Uint8Array(0);
    let ended = false;
    const flush = () => { out = out.subarray(c.write(out)); if (ended && out.length === 0) c.close(); };
    s.onEvent = (e) => {
      evs.push(`B:${e.kind}@${now}`);
      if (e.kind === 'readable') { const d = c.read(); const j = new Uint8Array(out.length + d.length); j.set(out); j.set(d, out.length); out = j; flush(); }
      if (e.kind === 'writable') flush();
      if (e.kind === 'end') { ended = true; flush(); }
    };
  } });
  const sockets: TcpSocket[] = [];
  const timed: { at: number; fn: () => void }[] = [];
  const open = (n: number) => {
    want.push(n);
    let pending = new Uint8Array(n).map((_, i) => i & 0xff);
    let recv = 0;
    const idx = got.length;
    let paused = r() < 0.5;
    if (paused) timed.push({ at: now + 2000 + Math.floor(r() * 5000), fn: () => { paused = false; const c = s.connection; if (c.readable > 0) { recv += c.read().length; got[idx] = recv; } } });
    got.push(0);
    const s: TcpSocket = sa.connect(B, 80, (e) => {
      evs.push(`A${idx}:${e.kind}@${now}`);
      const c = s.connection;
      if (e.kind === 'connected' || e.kind === 'writable') { pending = pending.subarray(c.write(pending)); if (pending.length === 0) c.close(); }
      if (e.kind === 'readable' && !paused) { recv += c.read().length; got[idx] = recv; }
    })!;
    sockets.push(s);
  };
  const deliver = () => {
    inflight.sort((x, y) => x.at - y.at);
    while (inflight.length && inflight[0]!.at <= now) {
      const m = inflight.shift()!;
      const st = stacks.get(m.dst)!;
      if (!st.receiveSegment(m.src, m.seg)) { /* closed port: drop */ }
    }
  };
  const advanceTo = (until: number) => {
    for (;;) {
      deliver();
      let next = Infinity;
      for (const st of stacks.values()) next = Math.min(next, st.soonest);
      const wake = mode === 'every' ? now + 1 : Math.max(now + 1, Math.ceil(next));
      let nd = inflight.length ? Math.min(...inflight.map((m) => m.at)) : Infinity;
      for (const e of timed) nd = Math.min(nd, e.at);
      const at = Math.min(wake, Math.max(nd, now + 1));
      if (at > until) break;
      now = at;
      deliver();
      for (const e of timed.filter((e) => e.at <= now)) { timed.splice(timed.indexOf(e), 1); e.fn(); }
      if (mode === 'every' || at >= wake) for (const st of stacks.values()) st.tick(now);
    }
    now = until;
  };
  let t = 0;
  for (let i = 0; i < connections; i++) { open(Math.floor(r() * size)); t += Math.floor(r() * 500); advanceTo(t); }
  advanceTo(t + 400_000);
  return { want, got, evs: evs.join(' '), a: sa.counters, b: sb.counters, sizes: [sa.size, sb.size] };
}

describe('TCP timers served from TcpStack.soonest alone', () => {
  // Over a lossy, delaying link (retransmissions, probes, recovery, persist, TIME-WAIT), a host that
  // ticks the stacks only at their soonest deadline must do exactly what one ticking every ms does:
  // soonest is a lower bound of every deadline, and a tick with nothing due changes nothing.
  it('do what a tick every millisecond does', () => {
    // Busy connections, and lone short ones whose timers nothing else would wake.
    for (const [connections, size] of [[6, 200_000], [1, 5000], [2, 3000]] as const) {
      for (let seed = 1; seed <= 20; seed++) {
        const deadline = run(seed, 'deadline', connections, size);
        expect(deadline.want).toEqual(deadline.got);
        expect(JSON.stringify(deadline)).toBe(JSON.stringify(run(seed, 'every', connections, size)));
      }
    }
  });
});
