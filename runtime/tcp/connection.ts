import { TcpFlag, type TcpRepr } from '../wire/tcp.ts';
import { encodeTcpOptions, parseTcpOptions, type SackBlock } from '../wire/tcp-options.ts';
import { RangeSet } from './range-set.ts';

/*
 * One TCP connection (RFC 9293) as a state machine with no I/O: the stack
 * feeds it the segments of its 4-tuple and the time, and it transmits through
 * `send` and reports through `event`, both called synchronously. Deliberately
 * small: window scaling (RFC 7323) and SACK (RFC 2018) but no timestamps
 * (we never offer them, so a peer must not use them), no delayed ACKs and no
 * Nagle - a load balancer on a LAN wants low latency more than fewer packets.
 * Bytes that arrive ahead of a gap are kept and reported in SACK blocks, so
 * a lossy link costs the peer one retransmission per lost segment. Loss
 * recovery is SACK-based (RFC 6675) when the peer permits SACK, NewReno
 * (RFC 5681, RFC 6582) when not, both with early retransmit (RFC 5827) for
 * the last few segments of a burst and limited transmit (RFC 3042). With
 * SACK a segment is also lost once one sent after it is SACKed (RACK, RFC
 * 8985 6, by send order), and a tail loss probe (RFC 8985 7) turns a lost
 * tail into a SACK hole well before the retransmission timeout. Go-back-N after a timeout; RTO per
 * RFC 6298; RST and SYN handling per RFC 5961.
 *
 * write/read/close/abort take no time argument: timers they arm count from the
 * last `now` given to receive/tick (or the options).
 */

export type TcpState =
  | 'syn-sent'
  | 'syn-received'
  | 'established'
  | 'fin-wait-1'
  | 'fin-wait-2'
  | 'close-wait'
  | 'closing'
  | 'last-ack'
  | 'time-wait'
  | 'closed';

export interface TcpConnectionOptions {
  localPort: number;
  remotePort: number;
  /** Initial send sequence number, chosen by the stack. */
  isn: number;
  /** ms */
  now: number;
  /**
   * The time now (ms), read when the application calls in between segments
   * and ticks (write, close): a relay writes to one connection from another's
   * event, long after this one last heard the time. Default: the time of the
   * last segment or tick.
   */
  clock?(): number;
  /** Our MSS, default 1460. */
  mss?: number;
  /** Whether to offer and accept SACK (RFC 2018), default true. */
  sack?: boolean;
  /**
   * Told the time of every timer the connection arms (retransmission,
   * persist, connect, TIME-WAIT, tail loss probe, reordering window): the
   * host should call tick() then. A timer stopped or moved later is not
   * told; the host finds that out at the tick, from nextTimer().
   */
  timerArmed?(at: number): void;
  /** Loss and recovery counts, added to as they happen (the stack's counters); default none kept. */
  lossCounters?: TcpLossCounters;
  /** Bytes write() accepts (unacknowledged included) before it returns less, default 256 KiB. */
  sendBufferLimit?: number;
  /** Unread bytes we buffer, which bounds the window we advertise; default 64 KiB. A larger buffer gets a window scale shift (RFC 7323). */
  receiveBufferLimit?: number;
  /** ms for an active open to complete, default 10000. */
  connectTimeout?: number;
  /** ms in TIME-WAIT, default 60000 (2*MSL, MSL 30 s). */
  timeWait?: number;
  /**
   * Transmits a segment; the stack adds IP. The payload may be a view into
   * the send buffer, good only until this call returns: copy it to keep it.
   */
  send(segment: TcpRepr): void;
  event(e: TcpEvent): void;
  /**
   * Asked when received data wants an ACK of its own: true when the host
   * promises to call `sendPendingAck()` once it has handled the frames it
   * received together. The segments of one batch then share one ACK, sent
   * after the application has read them, with the window that leaves (or
   * none at all when the answer carries it). Without it, every segment is
   * acknowledged as soon as it is taken.
   */
  deferAck?(): boolean;
  /**
   * Asked as the connection is about to enter TIME-WAIT: false when the host
   * already holds as many as it will, and the connection ends at once
   * instead, once it has acknowledged the peer's FIN (as Linux does past
   * tcp_max_tw_buckets).
   */
  enterTimeWait?(): boolean;
}

/** What loss cost, counted across connections. */
export interface TcpLossCounters {
  /** Segments sent again: after a timeout, by fast retransmit, or to fill a SACK hole. */
  segments_retransmitted: number;
  /** Retransmission timeouts of established connections (not of SYNs). */
  retransmit_timeouts: number;
  /** Fast recoveries entered on duplicate ACKs or SACK blocks. */
  fast_recoveries: number;
  /** Segments that arrived ahead of a gap and were kept until it filled. */
  segments_out_of_order: number;
  /** Tail loss probes sent (RFC 8985 7) when ACKs stopped coming. */
  tail_loss_probes: number;
}

export type TcpResetReason = 'rst-received' | 'connect-timeout' | 'retransmit-timeout' | 'refused';

export type TcpEvent =
  /** The handshake completed (active or passive open). */
  | { kind: 'connected' }
  /** New in-order bytes can be read(). */
  | { kind: 'readable' }
  /** The send buffer had been full (write() took less than offered) and now has room. */
  | { kind: 'writable' }
  /**
   * The peer's FIN arrived in order (EOF): nothing follows the bytes already
   * readable, which may still be unread. Comes after the 'readable' for them.
   */
  | { kind: 'end' }
  /** The connection is over and can be forgotten. */
  | { kind: 'closed' }
  /** Abnormal end; no events follow and the state is 'closed'. */
  | { kind: 'reset'; reason: TcpResetReason };

// --- sequence numbers ---------------------------------------------------------

/** Sequence numbers compare modulo 2^32 (RFC 9293 3.4): a is before b when b - a, as a signed 32-bit value, is positive. */
export function seqAdd(a: number, n: number): number {
  return (a + n) >>> 0;
}

/** a - b as a signed 32-bit distance. */
export function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

export function seqLt(a: number, b: number): boolean {
  return seqDiff(a, b) < 0;
}

export function seqLe(a: number, b: number): boolean {
  return seqDiff(a, b) <= 0;
}

export function seqGt(a: number, b: number): boolean {
  return seqDiff(a, b) > 0;
}

export function seqGe(a: number, b: number): boolean {
  return seqDiff(a, b) >= 0;
}

function seqMax(a: number, b: number): number {
  return seqGt(a, b) ? a : b;
}

function seqMin(a: number, b: number): number {
  return seqLt(a, b) ? a : b;
}

// --- constants ------------------------------------------------------------------

const DEFAULT_MSS = 1460;
/** RFC 9293 3.7.1: the MSS to assume when the peer's SYN carries none. */
const DEFAULT_PEER_MSS = 536;
/** Linux's TCP_MIN_MSS: a hostile tiny MSS must not make us send a byte per segment. */
const MIN_PEER_MSS = 88;
const MAX_WINDOW = 0xffff;
/** RFC 7323 2.3. */
const MAX_SHIFT = 14;

/** The smallest window shift that lets the 16-bit field cover `buffer` bytes (none for 64 KiB: one byte short is no loss). */
function windowShiftFor(buffer: number): number {
  if (buffer <= 65536) return 0;
  let shift = 0;
  while (shift < MAX_SHIFT && MAX_WINDOW * 2 ** shift < buffer) shift++;
  return shift;
}
const INITIAL_RTO = 1000;
const MIN_RTO = 200;
/**
 * The least probe timeout. RFC 8985 7.2 asks for 2 SRTT; on a LAN that is
 * below a millisecond, so a floor of two (Linux adds TCP_TIMEOUT_MIN, two
 * jiffies) - not 10 ms, which a lost ACK behind a small window costs each time.
 */
const MIN_PTO = 2;
const MAX_RTO = 60_000;
/** RFC 6298 5.7: the RTO once data flows after a SYN had to be retransmitted. */
const RTO_AFTER_SYN_LOSS = 3000;
const MAX_SYN_RETRIES = 4;
const MAX_DATA_RETRIES = 10;
const DUP_ACK_THRESHOLD = 3;
/** Out-of-order ranges a receiver keeps (upstream tracks 32 SACK blocks too); SACKed ranges a sender tracks. */
const MAX_OUT_OF_ORDER_RANGES = 32;
const MAX_SACKED_RANGES = 32;
/** SACK blocks in one ACK: without timestamps, 4 fit in the 40 option bytes. */
const MAX_SACK_BLOCKS = 4;
/** The least time between ACKs that answer bare segments we cannot take (Linux's tcp_invalid_ratelimit). */
const ANSWER_INTERVAL = 500;
/** "Arbitrarily high" (RFC 5681 3.1) until the first loss. */
const INITIAL_SSTHRESH = 0x7fffffff;
const EMPTY = new Uint8Array(0);

const { Fin, Syn, Rst, Psh, Ack } = TcpFlag;

/** The fields we use of an incoming segment, coerced to their wire ranges whatever the caller passed. */
interface Incoming {
  seq: number;
  ack: number;
  flags: number;
  window: number;
  options: Uint8Array | undefined;
  payload: Uint8Array;
}

function seqLen(s: Incoming): number {
  return s.payload.length + (s.flags & Syn ? 1 : 0) + (s.flags & Fin ? 1 : 0);
}

function u32(x: unknown): number {
  return typeof x === 'number' ? x >>> 0 : 0;
}

function isBytes(x: unknown): x is Uint8Array {
  return ArrayBuffer.isView(x) && (x as Uint8Array).BYTES_PER_ELEMENT === 1;
}

function incoming(s: TcpRepr): Incoming | undefined {
  if (typeof s !== 'object' || s === null) return undefined;
  return {
    seq: u32(s.seq),
    ack: u32(s.ack),
    flags: u32(s.flags) & 0xff,
    window: Math.min(MAX_WINDOW, u32(s.window)),
    options: isBytes(s.options) ? s.options : undefined,
    payload: isBytes(s.payload) ? s.payload : EMPTY,
  };
}

/** A positive integer option, or the default when absent or nonsense. */
function positive(value: number | undefined, fallback: number): number {
  return typeof value === 'number' && Number.isFinite(value) && value >= 1 ? Math.floor(value) : fallback;
}

// --- byte queue -----------------------------------------------------------------

/**
 * A ring buffer of at most `limit` bytes that grows as it fills, so an idle
 * connection does not hold its whole buffer limits.
 */
class ByteQueue {
  #buf: Uint8Array = EMPTY;
  #head = 0;
  #length = 0;
  /** Bytes past the queued ones that `writeAt` may have filled (out-of-order data), kept when the buffer grows. */
  #ahead = 0;

  constructor(readonly limit: number) {}

  get length(): number {
    return this.#length;
  }

  get free(): number {
    return this.limit - this.#length;
  }

  /** Bytes of memory the queue holds now. */
  get capacity(): number {
    return this.#buf.length;
  }

  /** Appends what fits; returns how many bytes were taken. */
  push(data: Uint8Array): number {
    const n = this.writeAt(0, data);
    this.extend(n);
    return n;
  }

  /**
   * Stores `data` `offset` bytes past the queued ones, where later bytes go:
   * not queued until `extend` says the gap before them is filled. What does
   * not fit under the limit is not stored; returns how many bytes were.
   */
  writeAt(offset: number, data: Uint8Array): number {
    const n = Math.min(data.length, this.free - offset);
    if (offset < 0 || n <= 0) return 0;
    this.#reserve(this.#length + offset + n);
    const cap = this.#buf.length;
    const tail = (this.#head + this.#length + offset) % cap;
    const first = Math.min(n, cap - tail);
    this.#buf.set(data.subarray(0, first), tail);
    if (n > first) this.#buf.set(data.subarray(first, n), 0);
    this.#ahead = Math.max(this.#ahead, offset + n);
    return n;
  }

  /** Queues `n` bytes that `writeAt` stored right after the queued ones. */
  extend(n: number): void {
    const count = Math.max(0, Math.min(n, this.free));
    this.#length += count;
    this.#ahead = Math.max(0, this.#ahead - count);
  }

  /**
   * `n` bytes from `offset`, clamped to what is queued: a view into the
   * buffer when they lie in one piece (good until the queue next changes),
   * else a copy.
   */
  view(offset: number, n: number): Uint8Array {
    const start = Math.max(0, Math.min(offset, this.#length));
    const count = Math.max(0, Math.min(n, this.#length - start));
    if (count === 0) return EMPTY;
    const at = (this.#head + start) % this.#buf.length;
    return at + count <= this.#buf.length ? this.#buf.subarray(at, at + count) : this.copy(offset, n);
  }

  /** A copy of `n` bytes from `offset`, clamped to what is queued. */
  copy(offset: number, n: number): Uint8Array {
    const start = Math.max(0, Math.min(offset, this.#length));
    return this.#ringCopy(start, Math.max(0, Math.min(n, this.#length - start)));
  }

  /** The queued bytes that lie in one piece from the front: a view, good until the queue next changes. */
  head(): Uint8Array {
    if (this.#length === 0) return EMPTY;
    return this.#buf.subarray(this.#head, Math.min(this.#head + this.#length, this.#buf.length));
  }

  /** A copy of `count` bytes of the ring from `start` bytes past the head, queued or not. */
  #ringCopy(start: number, count: number): Uint8Array {
    const out = new Uint8Array(count);
    const cap = this.#buf.length;
    if (count === 0 || cap === 0) return out;
    const at = (this.#head + start) % cap;
    const first = Math.min(count, cap - at);
    out.set(this.#buf.subarray(at, at + first));
    if (count > first) out.set(this.#buf.subarray(0, count - first), first);
    return out;
  }

  drop(n: number): void {
    const count = Math.max(0, Math.min(n, this.#length));
    if (count === 0) return;
    this.#length -= count;
    // An empty queue starts again at the front, unless out-of-order bytes wait where they are.
    this.#head = this.#length === 0 && this.#ahead === 0 ? 0 : (this.#head + count) % this.#buf.length;
  }

  take(n: number): Uint8Array {
    const out = this.copy(0, n);
    this.drop(out.length);
    return out;
  }

  clear(): void {
    this.#buf = EMPTY;
    this.#head = 0;
    this.#length = 0;
    this.#ahead = 0;
  }

  #reserve(size: number): void {
    if (size <= this.#buf.length) return;
    const next = new Uint8Array(Math.min(this.limit, Math.max(size, this.#buf.length * 2, 4096)));
    next.set(this.#ringCopy(0, this.#length + this.#ahead));
    this.#buf = next;
    this.#head = 0;
  }
}

// --- the connection ---------------------------------------------------------------

export class TcpConnection {
  readonly #opts: TcpConnectionOptions;
  #state: TcpState;
  #now: number;

  // Send side. SND.UNA/NXT/WND/WL1/WL2 as in RFC 9293; SND.MAX (as in BSD) is
  // the highest sequence number sent, which SND.NXT falls back from on a timeout.
  readonly #iss: number;
  #sndUna: number;
  #sndNxt: number;
  #sndMax: number;
  /** The end of a zero-window probe byte, which lies beyond SND.MAX. */
  #probeEnd: number;
  #sndWnd = 0;
  #sndWl1 = 0;
  #sndWl2 = 0;
  #maxSndWnd = 0;
  /** Sequence number of the send buffer's first byte. */
  #dataSeq: number;
  readonly #sendBuf: ByteQueue;
  /** close() was called: a FIN follows the last byte of the send buffer. */
  #finQueued = false;
  #writeBlocked = false;
  /** Effective send MSS. */
  #mss: number;
  readonly #ourMss: number;
  /** RFC 7323: the shift we offer (enough for our receive buffer), the peer's, and whether its SYN offered one. */
  readonly #ourShift: number;
  #sndShift = 0;
  #rcvShift = 0;
  #peerScales = false;

  // Congestion control.
  #cwnd: number;
  #ssthresh = INITIAL_SSTHRESH;
  /** Bytes acknowledged in congestion avoidance since cwnd last grew. */
  #ackedInAvoidance = 0;
  #dupAcks = 0;
  #inRecovery = false;
  #recover: number;
  /** Both SYNs carried SACK-permitted. */
  #sackOk = false;
  /** What the peer's SACK blocks say it holds past SND.UNA, as offsets from SND.UNA. */
  readonly #sacked = new RangeSet(MAX_SACKED_RANGES);
  /** RFC 6675 HighRxt, as an offset from SND.UNA: lost bytes below it were sent again in this recovery. */
  #highRxt = 0;
  /** SND.MAX when the latest of those went: bytes SACKed past it were sent later and overtook them. */
  #rxtMark = 0;
  /**
   * RFC 8985 RACK with send order for send times: unSACKed bytes below this
   * sequence number went out before a segment the peer has, so are lost
   * (once the reordering window passed, #rackAt, for those below #rackPending).
   */
  #rackLost: number;
  #rackPending: number;
  #rackAt: number | undefined;
  /** RFC 8985 RACK.reordering_seen: a segment arrived after one sent later than it. */
  #reorderingSeen = false;

  // RTT and timers.
  #srtt: number | undefined;
  /** RFC 8985 RACK.min_RTT: the least sample, which scales the reordering window. */
  #minRtt: number | undefined;
  #rttvar = 0;
  #rto = INITIAL_RTO;
  /** The ACK that ends the RTT measurement in progress (one at a time, never of a retransmission). */
  #rttSeq: number | undefined;
  #rttSentAt = 0;
  #retries = 0;
  #synRetransmitted = false;
  #rtoAt: number | undefined;
  /** When a tail loss probe goes, and whether one went since SND.UNA last moved. */
  #probeTimeoutAt: number | undefined;
  #tailProbed = false;
  #persistAt: number | undefined;
  #persistBackoff = INITIAL_RTO;
  #probesUnanswered = 0;
  #connectAt: number | undefined;
  #timeWaitAt: number | undefined;

  // Receive side.
  #irs = 0;
  #rcvNxt = 0;
  /** RCV.NXT + the window we last advertised: the right edge the peer knows. */
  #rcvAdvRight = 0;
  readonly #rcvBuf: ByteQueue;
  /** Bytes held in #rcvBuf past RCV.NXT, ahead of a gap, as offsets from RCV.NXT. */
  readonly #ahead = new RangeSet(MAX_OUT_OF_ORDER_RANGES);
  /** Where a FIN that came ahead of a gap goes. */
  #aheadFin: number | undefined;
  /** Where the latest segment kept ahead of a gap starts: its range is the first SACK block (RFC 2018 4). */
  #aheadLatest = 0;
  #finReceived = false;
  #lastProgress: number;
  /** Data or a FIN arrived in order and no segment has carried its ACK yet. */
  #ackNeeded = false;
  /** When we last answered a segment that took no sequence space with an ACK (see #answer). */
  #answeredAt = -Infinity;

  // Events, delivered after the state they report is in place.
  #events: TcpEvent[] = [];
  #flushing = false;
  #terminated = false;

  private constructor(opts: TcpConnectionOptions, state: TcpState) {
    this.#opts = opts;
    this.#state = state;
    this.#now = Number.isFinite(opts.now) ? opts.now : 0;
    this.#lastProgress = this.#now;
    this.#iss = u32(opts.isn);
    this.#sndUna = this.#iss;
    this.#sndNxt = this.#iss;
    this.#sndMax = this.#iss;
    this.#probeEnd = this.#iss;
    this.#recover = this.#iss;
    this.#rackLost = this.#iss;
    this.#rackPending = this.#iss;
    this.#dataSeq = seqAdd(this.#iss, 1);
    // No smaller than the floor put on the peer's: SACK blocks (up to 36 bytes) come out of it.
    this.#ourMss = Math.min(MAX_WINDOW, Math.max(MIN_PEER_MSS, positive(opts.mss, DEFAULT_MSS)));
    this.#mss = this.#ourMss;
    this.#cwnd = initialCwnd(this.#mss);
    this.#sendBuf = new ByteQueue(positive(opts.sendBufferLimit, 256 * 1024));
    this.#rcvBuf = new ByteQueue(positive(opts.receiveBufferLimit, 64 * 1024));
    this.#ourShift = windowShiftFor(this.#rcvBuf.limit);
  }

  /** Active open: sends a SYN with our MSS. */
  static connect(opts: TcpConnectionOptions): TcpConnection {
    const c = new TcpConnection(opts, 'syn-sent');
    c.#connectAt = c.#armed(c.#now + positive(opts.connectTimeout, 10_000));
    c.#sendSyn();
    c.#updateTimers();
    return c;
  }

  /**
   * Passive open from a SYN the stack received: sends a SYN-ACK with our MSS.
   * Anything but a SYN without ACK or RST gives a connection that is already
   * closed and sends nothing; the stack should answer such a segment itself.
   */
  static accept(opts: TcpConnectionOptions, syn: TcpRepr): TcpConnection {
    const c = new TcpConnection(opts, 'syn-received');
    const seg = incoming(syn);
    if (seg === undefined || (seg.flags & (Syn | Ack | Rst)) !== Syn) {
      c.#state = 'closed';
      c.#terminated = true;
      return c;
    }
    // Data or a FIN on the SYN is not taken: the peer sends it again once we ACK only the SYN.
    c.#irs = seg.seq;
    c.#rcvNxt = seqAdd(seg.seq, 1);
    c.#rcvAdvRight = c.#rcvNxt;
    c.#negotiate(seg.options);
    c.#sendSyn();
    c.#updateTimers();
    return c;
  }

  get state(): TcpState {
    return this.#state;
  }

  /** Bytes read() can return now. */
  get readable(): number {
    return this.#rcvBuf.length;
  }

  /** Bytes of buffer memory this connection holds now (its buffers grow as they fill). */
  get bufferMemory(): number {
    return this.#sendBuf.capacity + this.#rcvBuf.capacity;
  }

  /** Bytes write() would accept now. */
  get writableSpace(): number {
    return this.#canWrite() ? this.#sendBuf.free : 0;
  }

  receive(segment: TcpRepr, now: number): void {
    if (this.#state === 'closed') return;
    const seg = incoming(segment);
    if (seg === undefined) return;
    if ((seg.flags & Syn) === 0) seg.window *= 1 << this.#sndShift;
    if (Number.isFinite(now)) this.#now = now;
    if (this.#state === 'syn-sent') this.#receiveInSynSent(seg);
    else this.#receiveSynchronized(seg);
    if (!this.#isClosed()) {
      this.#output();
      if (this.#ackNeeded && !this.#opts.deferAck?.()) this.#sendAck();
      this.#updateTimers();
    }
    this.#flush();
  }

  /** The ACK `deferAck` held back, unless a segment sent since has carried it. */
  sendPendingAck(): void {
    if (!this.#ackNeeded || this.#isClosed()) return;
    this.#sendAck();
    this.#flush();
  }

  /** Queues up to the free send-buffer space and sends what the windows allow; returns the bytes taken. */
  write(data: Uint8Array): number {
    if (!this.#canWrite() || !isBytes(data)) return 0;
    this.#readClock();
    const n = this.#sendBuf.push(data);
    // Full, whether or not this write was cut short: a writer that fills the buffer exactly (it asked writableSpace first) waits for "writable" too.
    if (n < data.length || this.#sendBuf.free === 0) this.#writeBlocked = true;
    if (n > 0) {
      this.#output();
      this.#updateTimers();
    }
    this.#flush();
    return n;
  }

  /** Takes up to `max` buffered in-order bytes (all by default). */
  read(max?: number): Uint8Array {
    const limit = typeof max === 'number' && max >= 0 ? Math.floor(max) : Infinity;
    const out = this.#rcvBuf.take(Math.min(limit, this.#rcvBuf.length));
    this.#consumed(out.length);
    return out;
  }

  /**
   * Offers the buffered in-order bytes to `sink` without copying them out
   * (each piece a view into the buffer, good only during the call) while it
   * takes all it is offered; what it takes counts as read. Returns the bytes
   * taken. A proxy moves bytes from one connection to another with it.
   */
  readInto(sink: (bytes: Uint8Array) => number): number {
    let taken = 0;
    while (this.#rcvBuf.length > 0) {
      const piece = this.#rcvBuf.head();
      const offered = sink(piece);
      const n = offered > 0 ? Math.min(piece.length, Math.floor(offered)) : 0;
      this.#rcvBuf.drop(n);
      taken += n;
      if (n < piece.length) break;
    }
    this.#consumed(taken);
    return taken;
  }

  /**
   * The application took `n` bytes: tell the peer about the room they make,
   * when it is worth a segment. After the peer's FIN nothing more can
   * arrive, so a drained buffer gives its memory back (a connection may
   * enter TIME-WAIT with bytes still unread, and linger there a minute).
   */
  #consumed(n: number): void {
    if (this.#finReceived && this.#rcvBuf.length === 0) this.#rcvBuf.clear();
    if (n > 0 && this.#state !== 'closed' && !this.#finReceived && this.#windowUpdateDue()) {
      this.#sendAck();
      this.#flush();
    }
  }

  /** Orderly close: a FIN after every byte written so far. Before the handshake completes, the FIN waits for it. */
  close(): void {
    if (this.#finQueued) return;
    switch (this.#state) {
      case 'syn-sent':
      case 'syn-received':
        this.#finQueued = true;
        return;
      case 'established':
        this.#finQueued = true;
        this.#state = 'fin-wait-1';
        break;
      case 'close-wait':
        this.#finQueued = true;
        this.#state = 'last-ack';
        break;
      default:
        return;
    }
    this.#readClock();
    this.#output();
    this.#updateTimers();
    this.#flush();
  }

  /** The time from the host's clock, for what the application starts between segments and ticks (timers, RTT samples). */
  #readClock(): void {
    const now = this.#opts.clock?.();
    if (now !== undefined && Number.isFinite(now) && now > this.#now) this.#now = now;
  }

  /** Ends the connection at once: an RST if the peer has a connection to reset, then only a 'closed' event. */
  abort(): void {
    if (this.#state === 'closed') return;
    switch (this.#state) {
      case 'syn-received':
      case 'established':
      case 'fin-wait-1':
      case 'fin-wait-2':
      case 'close-wait':
        this.#sendReset();
        break;
      default:
        break;
    }
    this.#rcvBuf.clear();
    this.#forgetAhead();
    this.#terminate({ kind: 'closed' });
    this.#flush();
  }

  /**
   * RFC 1122 4.2.2.13, as Linux applies it without timestamps: a SYN for
   * this connection's four-tuple while it lingers in TIME-WAIT opens a new
   * incarnation when its sequence number lies past everything this one
   * received. Clients that reuse ports quickly (every HTTP load generator)
   * would otherwise get an ACK, answer it with RST and retry only after a
   * second. Returns the sequence number the new connection's ISN must lie
   * past (the highest this one sent), or undefined to answer as TIME-WAIT.
   */
  reopenFloor(syn: TcpRepr): number | undefined {
    const seg = incoming(syn);
    if (this.#state !== 'time-wait' || seg === undefined || (seg.flags & (Syn | Ack | Rst)) !== Syn) return undefined;
    return seqGt(seg.seq, this.#rcvNxt) ? this.#sndMax : undefined;
  }

  tick(now: number): void {
    if (this.#state === 'closed') return;
    if (Number.isFinite(now)) this.#now = now;
    this.#runTimers();
    if (!this.#isClosed()) this.#updateTimers();
    this.#flush();
  }

  /** When a tail loss probe or the end of a reordering window (RFC 8985) is due, if one is armed. */
  get shortTimeout(): number | undefined {
    return earliest(this.#probeTimeoutAt, this.#rackAt);
  }

  /**
   * When the connection last made progress: took new in-order bytes from
   * the peer, or had bytes it sent acknowledged (ms, the clock of receive/tick).
   */
  get lastProgress(): number {
    return this.#lastProgress;
  }

  /** The time (ms) of the next deadline, or undefined when no timer runs. */
  nextTimer(): number | undefined {
    if (this.#state === 'closed') return undefined;
    return earliest(earliest(earliest(earliest(this.#connectAt, this.#timeWaitAt), this.#rtoAt), this.#persistAt), this.shortTimeout);
  }

  // --- incoming segments --------------------------------------------------------

  /** RFC 9293 3.10.7.3. */
  #receiveInSynSent(seg: Incoming): void {
    const hasAck = (seg.flags & Ack) !== 0;
    // Only the SYN is outstanding, so the one acceptable ACK is ISS+1.
    if (hasAck && seg.ack !== this.#sndNxt) {
      if ((seg.flags & Rst) === 0) this.#sendRaw(seg.ack, 0, Rst);
      return;
    }
    if (seg.flags & Rst) {
      if (hasAck) this.#fail('refused');
      return;
    }
    if ((seg.flags & Syn) === 0) return;
    this.#irs = seg.seq;
    this.#rcvNxt = seqAdd(seg.seq, 1);
    this.#rcvAdvRight = this.#rcvNxt;
    this.#negotiate(seg.options);
    if (!hasAck) {
      // Simultaneous open: both SYNs crossed.
      this.#state = 'syn-received';
      this.#sendSyn();
      return;
    }
    this.#handshakeDone(seg);
    this.#sendAck();
  }

  #receiveSynchronized(seg: Incoming): void {
    const { seq, flags } = seg;
    if (flags & Rst) {
      this.#receiveReset(seq);
      return;
    }
    if (flags & Syn) {
      // A retransmitted SYN means our SYN-ACK was lost: answer now rather than at our next timeout.
      if (this.#state === 'syn-received' && (flags & Ack) === 0 && seq === this.#irs) {
        this.#rttSeq = undefined;
        this.#sendSyn();
      } else {
        this.#answer(0); // RFC 5961 4.2: a challenge ACK, whatever the sequence number.
      }
      return;
    }
    if (this.#state === 'time-wait' && flags & Fin) {
      // The peer did not get our ACK of its FIN.
      this.#timeWaitAt = this.#armed(this.#now + this.#timeWaitMs());
      this.#sendAck();
      return;
    }

    let payload = seg.payload;
    let fin = (flags & Fin) !== 0;
    const segLen = payload.length + (fin ? 1 : 0);
    const wnd = this.#receiveWindow();
    if (!this.#acceptable(seq, segLen, wnd)) {
      // RFC 9293 3.10.7.4: a zero window takes no data but must still take ACKs, or a sender that
      // is probing us could never learn that its own data was acknowledged. A bare FIN needs no
      // buffer, so it is taken too (as Linux does) rather than waiting for the reader.
      if (!(wnd === 0 && seq === this.#rcvNxt)) {
        this.#answer(segLen);
        return;
      }
      fin = fin && payload.length === 0;
      payload = EMPTY;
      this.#ackNeeded = true;
    }
    if ((flags & Ack) === 0) return;

    if (this.#state === 'syn-received') {
      if (!(seqGt(seg.ack, this.#sndUna) && seqLe(seg.ack, this.#sndMax))) {
        this.#sendRaw(seg.ack, 0, Rst);
        return;
      }
      this.#handshakeDone(seg);
    } else if (!this.#receiveAck(seg)) {
      return;
    }

    if (this.#finAcked()) {
      if (this.#state === 'fin-wait-1') this.#state = 'fin-wait-2';
      else if (this.#state === 'closing') this.#enterTimeWait();
      else if (this.#state === 'last-ack') {
        this.#terminate({ kind: 'closed' });
        return;
      }
    }

    if (this.#state === 'established' || this.#state === 'fin-wait-1' || this.#state === 'fin-wait-2') {
      this.#receiveText(seq, payload, fin);
    }
  }

  /** RFC 5961 3.2: only an RST at exactly RCV.NXT resets; one elsewhere in the window gets a challenge ACK. */
  #receiveReset(seq: number): void {
    // RFC 1337: an RST must not cut TIME-WAIT short.
    if (this.#state === 'time-wait') return;
    if (seq === this.#rcvNxt) {
      this.#rcvBuf.clear();
      this.#forgetAhead();
      this.#fail('rst-received');
    } else if (seqGt(seq, this.#rcvNxt) && seqLt(seq, seqAdd(this.#rcvNxt, this.#receiveWindow()))) {
      this.#answer(0);
    }
  }

  /** RFC 9293 3.10.7.4's acceptability test. */
  #acceptable(seq: number, segLen: number, wnd: number): boolean {
    const inWindow = (s: number) => seqGe(s, this.#rcvNxt) && seqLt(s, seqAdd(this.#rcvNxt, wnd));
    if (segLen === 0) return wnd === 0 ? seq === this.#rcvNxt : inWindow(seq);
    return wnd > 0 && (inWindow(seq) || inWindow(seqAdd(seq, segLen - 1)));
  }

  /** The ACK that completes our SYN's handshake, in SYN-SENT (a SYN-ACK) or SYN-RECEIVED. */
  #handshakeDone(seg: Incoming): void {
    this.#connectAt = undefined;
    this.#retries = 0;
    this.#ackSent(seg.ack);
    this.#sndWnd = seg.window;
    this.#sndWl1 = seg.seq;
    this.#sndWl2 = seg.ack;
    this.#maxSndWnd = seg.window;
    this.#cwnd = initialCwnd(this.#mss);
    if (this.#synRetransmitted && this.#srtt === undefined) this.#rto = RTO_AFTER_SYN_LOSS;
    this.#state = this.#finQueued ? 'fin-wait-1' : 'established';
    this.#emit({ kind: 'connected' });
  }

  /** Step 5 of RFC 9293 3.10.7.4 in synchronized states; false when the segment is to be dropped. */
  #receiveAck(seg: Incoming): boolean {
    const { ack } = seg;
    const limit = seqMax(this.#sndMax, this.#probeEnd);
    // Acknowledges something never sent, or (RFC 5961 5.2) is too old to be from this connection.
    if (seqGt(ack, limit) || seqLt(ack, seqAdd(this.#sndUna, -this.#maxSndWnd))) {
      this.#answer(seqLen(seg));
      return false;
    }
    if (seqLt(ack, this.#sndUna)) return true;
    this.#probesUnanswered = 0;
    const una = this.#sndUna;
    const fack = this.#sacked.isEmpty ? undefined : seqAdd(una, this.#sacked.highest);
    const heldBelowFack = this.#sacked.size;
    // Nothing was sent twice, so whatever arrives below the highest SACKed byte was overtaken. (A
    // block first reported late, its ACK lost, looks the same: that only costs a reordering window.)
    const sentOnce = !this.#inRecovery && seqGe(una, this.#recover) && !this.#tailProbed;
    if (ack === una) {
      // RFC 5681 2: a duplicate ACK has outstanding data behind it, carries nothing and leaves the window alone.
      const dup =
        seqGt(this.#sndNxt, this.#sndUna) && seg.payload.length === 0 && (seg.flags & (Syn | Fin)) === 0 && seg.window === this.#sndWnd;
      // RFC 6675 2: with SACK, an ACK that SACKs new bytes is a duplicate too, whatever its window says.
      const sackedNew = this.#takeSackBlocks(seg.options);
      if (sackedNew) this.#rackDetect();
      if (sackedNew || dup) this.#duplicateAck();
    } else {
      this.#newAck(ack);
      this.#takeSackBlocks(seg.options);
      this.#rackDetect();
      // RFC 8985 6.2: any ACK that shows a segment lost starts recovery, not only a duplicate.
      if (this.#sackOk && this.#lostBelow() > 0) this.#enterRecovery();
    }
    if (sentOnce && fack !== undefined && seqDiff(this.#sndUna, una) + this.#sackedBelow(seqDiff(fack, this.#sndUna)) > heldBelowFack) {
      this.#reorderingSeen = true;
    }
    if (seqLt(this.#sndWl1, seg.seq) || (this.#sndWl1 === seg.seq && seqLe(this.#sndWl2, ack))) {
      this.#sndWnd = seg.window;
      this.#sndWl1 = seg.seq;
      this.#sndWl2 = ack;
      this.#maxSndWnd = Math.max(this.#maxSndWnd, seg.window);
      if (seg.window > 0) this.#persistBackoff = this.#rto;
    }
    return true;
  }

  #newAck(ack: number): void {
    const acked = seqDiff(ack, this.#sndUna);
    const freed = this.#ackSent(ack);
    this.#lastProgress = this.#now;
    this.#retries = 0;
    this.#rtoAt = undefined; // restarted by #updateTimers (RFC 6298 5.3)
    this.#probeTimeoutAt = undefined;
    this.#tailProbed = false;
    this.#dupAcks = 0;
    if (this.#inRecovery) {
      if (seqGe(ack, this.#recover)) {
        this.#inRecovery = false;
        this.#cwnd = this.#ssthresh;
      } else if (this.#sackOk) {
        // RFC 6675: a partial ACK changes nothing but the scoreboard; #output sends what it allows.
      } else {
        // RFC 6582 partial ACK: the next hole is lost too.
        this.#retransmitAt(this.#sndUna, this.#mss);
        this.#cwnd = Math.max(this.#mss, this.#cwnd - acked + (acked >= this.#mss ? this.#mss : 0));
      }
    } else if (this.#cwnd < this.#ssthresh) {
      this.#cwnd += Math.min(acked, this.#mss);
    } else {
      // RFC 5681 3.1's recommended byte counting: an SMSS per cwnd of bytes acknowledged. Counting
      // ACKs instead (its equation 3) grows half as fast behind a receiver that delays its ACKs.
      this.#ackedInAvoidance += acked;
      if (this.#ackedInAvoidance >= this.#cwnd) {
        this.#ackedInAvoidance -= this.#cwnd;
        this.#cwnd += this.#mss;
      }
    }
    if (freed > 0 && this.#writeBlocked) {
      this.#writeBlocked = false;
      this.#emit({ kind: 'writable' });
    }
  }

  /** Moves SND.UNA to `ack` and frees the acknowledged bytes; returns how many. */
  #ackSent(ack: number): number {
    if (seqGt(ack, this.#sndNxt)) this.#sndNxt = ack;
    if (seqGt(ack, this.#sndMax)) this.#sndMax = ack; // a probe byte the peer took
    const freed = Math.max(0, Math.min(this.#sendBuf.length, seqDiff(ack, this.#dataSeq)));
    this.#sendBuf.drop(freed);
    this.#dataSeq = seqAdd(this.#dataSeq, freed);
    const acked = seqDiff(ack, this.#sndUna);
    this.#sndUna = ack;
    this.#sacked.advance(acked);
    this.#highRxt = Math.max(0, this.#highRxt - acked);
    // A reordering window left nothing to decide once its bytes are all acknowledged.
    if (this.#rackAt !== undefined && seqGe(ack, this.#rackPending)) this.#rackAt = undefined;
    // Kept within the window, so that sequence numbers wrapping around cannot put them ahead again.
    this.#rackLost = seqMax(this.#rackLost, ack);
    this.#rackPending = seqMax(this.#rackPending, ack);
    if (this.#rttSeq !== undefined && seqGe(ack, this.#rttSeq)) {
      this.#sampleRtt(this.#now - this.#rttSentAt);
      this.#rttSeq = undefined;
    }
    return freed;
  }

  #duplicateAck(): void {
    this.#dupAcks++;
    if (this.#inRecovery) {
      // NewReno: each duplicate means a segment left the network, so let another one in.
      // With SACK the pipe estimate says that instead (RFC 6675).
      if (!this.#sackOk) this.#cwnd += this.#mss;
      return;
    }
    if (this.#dupAcks >= this.#dupThreshold() || (this.#sackOk && this.#lostBelow() > 0)) this.#enterRecovery();
  }

  /** RFC 6675 5 (4) / RFC 6582 3.2 (fast retransmit): halves the window once per loss event. */
  #enterRecovery(): void {
    // RFC 6582 3.2: not for duplicates of what a recovery or timeout already resent.
    if (this.#inRecovery || !seqGe(this.#sndUna, this.#recover)) return;
    const threshold = this.#dupThreshold();
    this.#probeTimeoutAt = undefined;
    this.#ackedInAvoidance = 0;
    this.#ssthresh = Math.max(Math.floor(this.#flightSize() / 2), 2 * this.#mss);
    this.#recover = this.#sndMax;
    this.#inRecovery = true;
    if (this.#opts.lossCounters) this.#opts.lossCounters.fast_recoveries++;
    // RFC 6675 5 (4.2): the first segment goes again at once; #output sends the rest the pipe allows.
    // Unless it already went again: an ACK ending one recovery can start the next (RACK marked bytes
    // sent during it lost) while their resend is on its way - #retransmitLost resends it if that is lost.
    if (this.#highRxt === 0) {
      this.#highRxt = this.#retransmitAt(this.#sndUna, this.#mss);
      this.#rxtMark = this.#sndMax;
    }
    this.#cwnd = this.#sackOk ? this.#ssthresh : this.#ssthresh + threshold * this.#mss;
  }

  /**
   * RFC 5827 early retransmit: with fewer than four segments out and nothing
   * new to send, fewer duplicates will ever come, so fewer suffice.
   */
  #dupThreshold(): number {
    if (this.#unsent() > 0) return DUP_ACK_THRESHOLD;
    const outstanding = Math.ceil(this.#flightSize() / this.#mss);
    return outstanding >= 2 && outstanding <= DUP_ACK_THRESHOLD ? outstanding - 1 : DUP_ACK_THRESHOLD;
  }

  /**
   * Records what the peer's SACK blocks say it holds: only blocks inside
   * (SND.UNA, SND.MAX] count. Returns whether they SACKed new bytes.
   */
  #takeSackBlocks(options: Uint8Array | undefined): boolean {
    if (!this.#sackOk || options === undefined || options.length === 0) return false;
    const parsed = parseTcpOptions(options, 0, options.length);
    if (typeof parsed === 'string' || parsed.sackBlocks === undefined) return false;
    const flight = this.#flightSize();
    const before = this.#sacked.size;
    for (const { left, right } of parsed.sackBlocks) {
      const start = seqDiff(left, this.#sndUna);
      const end = seqDiff(right, this.#sndUna);
      if (start > 0 && end > start && end <= flight) this.#sacked.add(start, end);
    }
    return this.#sacked.size > before;
  }

  /**
   * The offset from SND.UNA below which every unSACKed byte is lost (0:
   * none), by RFC 6675 IsLost or by RACK (RFC 8985), whichever says more.
   */
  #lostBelow(): number {
    return Math.max(this.#lostByCount(), seqDiff(this.#rackLost, this.#sndUna));
  }

  /** RFC 6675 IsLost, by bytes: an unSACKed byte is lost once more than (threshold - 1) segments' worth above it are SACKed. */
  #lostByCount(): number {
    const sacked = this.#sacked;
    const enough = (this.#dupThreshold() - 1) * this.#mss;
    let above = 0;
    for (let i = sacked.count - 1; i >= 0; i--) {
      above += sacked.end(i) - sacked.start(i);
      if (above > enough) return sacked.start(i);
    }
    return 0;
  }

  /**
   * RFC 8985 6.2 (RACK_detect_loss), with send order standing in for send
   * times: new bytes go out in sequence order, so every unSACKed byte below
   * the highest SACKed block was sent before it and is lost once the
   * reordering window has passed, however few segments lie above it - one
   * SACKed segment suffices where RFC 6675 wants three. A resend is sent
   * later than everything below SND.MAX, which order cannot say: those
   * below HighRxt stay out of NextSeg, and #rxtMark finds their loss. After
   * a timeout's go-back-N the order no longer holds, so counting decides.
   */
  #rackDetect(): void {
    if (!this.#sackOk || this.#sacked.isEmpty || (!this.#inRecovery && seqLt(this.#sndUna, this.#recover))) return;
    const sentBefore = seqAdd(this.#sndUna, this.#sacked.start(this.#sacked.count - 1));
    if (seqLe(sentBefore, this.#rackLost)) return;
    const wait = this.#reorderWindow();
    if (wait === 0) {
      this.#rackLost = sentBefore;
      this.#rackAt = undefined;
    } else if (this.#rackAt === undefined) {
      // The deadline counts from this ACK, not from when the bytes went: a little late, never early.
      this.#rackPending = sentBefore;
      this.#rackAt = this.#armed(this.#now + wait);
    }
  }

  /**
   * RFC 8985 6.2 step 4 (RACK.reo_wnd), without DSACK: none in recovery or
   * once DupThresh segments are SACKed, unless the peer has been seen to
   * reorder; else a quarter of the least round trip, at most SRTT.
   */
  #reorderWindow(): number {
    if (!this.#reorderingSeen && (this.#inRecovery || this.#sacked.size >= DUP_ACK_THRESHOLD * this.#mss)) return 0;
    return Math.min((this.#minRtt ?? INITIAL_RTO) / 4, this.#srtt ?? INITIAL_RTO);
  }

  /** RFC 8985 6.3: the reordering window passed, so the bytes it held back are lost. */
  #rackTimeout(): void {
    if (seqGt(this.#rackPending, this.#rackLost)) this.#rackLost = this.#rackPending;
    // Holes SACKs opened while the window ran get one of their own.
    this.#rackDetect();
    if (this.#sackOk && this.#lostBelow() > 0) this.#enterRecovery();
    this.#output();
  }

  /** SACKed bytes below offset `at`. */
  #sackedBelow(at: number): number {
    const sacked = this.#sacked;
    let n = 0;
    for (let i = 0; i < sacked.count && sacked.start(i) < at; i++) n += Math.min(at, sacked.end(i)) - sacked.start(i);
    return n;
  }

  /** RFC 6675 SetPipe: bytes still in the network - sent, not SACKed, not lost, plus what was sent again. */
  #pipe(): number {
    const lostEnd = this.#lostBelow();
    const lost = lostEnd - this.#sackedBelow(lostEnd);
    const resentEnd = Math.min(this.#highRxt, lostEnd);
    const resent = resentEnd - this.#sackedBelow(resentEnd);
    return Math.max(0, this.#flightSize() - this.#sacked.size - lost + resent);
  }

  /** RFC 6675 NextSeg rule 1: the first lost byte not yet sent again, and where its hole ends; undefined when none. */
  #nextLost(): { at: number; end: number } | undefined {
    const lostEnd = this.#lostBelow();
    const sacked = this.#sacked;
    let at = this.#highRxt;
    for (let i = 0; i < sacked.count && at < lostEnd; i++) {
      if (at < sacked.start(i)) return { at, end: Math.min(sacked.start(i), lostEnd) };
      at = Math.max(at, sacked.end(i));
    }
    return undefined;
  }

  /** In SACK recovery, sends lost segments again while the pipe has room for them. */
  #retransmitLost(): void {
    // A resent segment was lost too when bytes sent after it are SACKed and it is not (as Linux
    // detects lost retransmissions): everything resent this round that is still missing goes again.
    const mark = seqDiff(this.#rxtMark, this.#sndUna);
    if (this.#highRxt > 0 && mark > 0 && this.#sacked.highest > mark) this.#highRxt = 0;
    while (this.#cwnd - this.#pipe() >= this.#mss) {
      const hole = this.#nextLost();
      if (hole === undefined) return;
      const sent = this.#retransmitAt(seqAdd(this.#sndUna, hole.at), hole.end - hole.at);
      if (sent === 0) return;
      this.#highRxt = hole.at + sent;
      this.#rxtMark = this.#sndMax;
    }
  }

  /** Step 7: in-order bytes become readable; bytes ahead of a gap wait in the buffer, with a duplicate ACK. */
  #receiveText(seq: number, payload: Uint8Array, fin: boolean): void {
    if (payload.length === 0 && !fin) return;
    if (seqGt(seq, this.#rcvNxt)) {
      this.#receiveAhead(seq, payload, fin);
      this.#sendAck();
      return;
    }
    this.#ackNeeded = true;
    const skip = seqDiff(this.#rcvNxt, seq);
    let data = payload.subarray(Math.min(skip, payload.length));
    const room = this.#receiveWindow();
    let trimmed = false;
    if (data.length > room) {
      data = data.subarray(0, room);
      trimmed = true;
    }
    if (data.length > 0) {
      this.#rcvBuf.push(data);
      this.#rcvNxt = seqAdd(this.#rcvNxt, data.length);
      this.#ahead.advance(data.length);
    }
    // A FIN counts only where it sits: right after the segment's last byte, with that byte kept.
    let readable = data.length > 0;
    let finHere = fin && !trimmed && seqAdd(seq, payload.length) === this.#rcvNxt;
    if (!finHere) {
      // The gap before bytes kept ahead of it may just have closed.
      const joined = this.#ahead.takeFront();
      if (joined > 0) {
        this.#rcvBuf.extend(joined);
        this.#rcvNxt = seqAdd(this.#rcvNxt, joined);
      }
      readable ||= joined > 0;
      finHere = this.#aheadFin === this.#rcvNxt;
    }
    if (readable) {
      this.#lastProgress = this.#now;
      this.#emit({ kind: 'readable' });
    }
    if (!finHere) return;
    this.#forgetAhead();
    this.#rcvNxt = seqAdd(this.#rcvNxt, 1);
    this.#finReceived = true;
    // Queued before the state changes: a connection that skips TIME-WAIT ends right here, after its end.
    this.#emit({ kind: 'end' });
    if (this.#state === 'established') this.#state = 'close-wait';
    else if (this.#state === 'fin-wait-1') this.#state = 'closing';
    else this.#enterTimeWait();
  }

  /**
   * Keeps what lies in the window of a segment that starts past RCV.NXT, in
   * the receive buffer where it belongs, until the gap before it fills. A
   * FIN is kept only with every byte before it that the segment carries.
   */
  #receiveAhead(seq: number, payload: Uint8Array, fin: boolean): void {
    const offset = seqDiff(seq, this.#rcvNxt);
    const len = Math.min(payload.length, this.#receiveWindow() - offset);
    if (len > 0) {
      if (!this.#ahead.add(offset, offset + len)) return;
      this.#rcvBuf.writeAt(offset, payload.subarray(0, len));
      this.#aheadLatest = seq;
      if (this.#opts.lossCounters) this.#opts.lossCounters.segments_out_of_order++;
    }
    if (fin && len === payload.length) this.#aheadFin = seqAdd(seq, len);
  }

  /** Bytes and FIN ahead of a gap will not be needed (the peer's FIN came, or the connection is over). */
  #forgetAhead(): void {
    this.#ahead.clear();
    this.#aheadFin = undefined;
  }

  /** The option bytes the SACK blocks of our next segment take: two NOPs, kind, length, 8 per block. */
  #sackOptionBytes(): number {
    return this.#sackOk && !this.#ahead.isEmpty ? 4 + 8 * Math.min(this.#ahead.count, MAX_SACK_BLOCKS) : 0;
  }

  /** RFC 2018 4: the range the latest segment joined first, then the others from the lowest. */
  #sackBlocks(): SackBlock[] {
    const ahead = this.#ahead;
    const latest = Math.max(0, ahead.indexOf(seqDiff(this.#aheadLatest, this.#rcvNxt)));
    const order = [latest];
    for (let i = 0; i < ahead.count && order.length < MAX_SACK_BLOCKS; i++) if (i !== latest) order.push(i);
    return order.map((i) => ({ left: seqAdd(this.#rcvNxt, ahead.start(i)), right: seqAdd(this.#rcvNxt, ahead.end(i)) }));
  }

  // --- sending ----------------------------------------------------------------------

  /** Sends new data (and then the FIN) as far as the peer's window and cwnd allow. */
  #output(force = false): void {
    if (!this.#canSend()) return;
    const sackRecovery = this.#inRecovery && this.#sackOk;
    if (sackRecovery) this.#retransmitLost();
    for (;;) {
      const unsent = this.#unsent();
      if (unsent === 0) {
        // The FIN takes no buffer space at the peer, so no window is needed for it.
        if (this.#finQueued && this.#sndNxt === this.#finSeq()) this.#sendNew(0);
        return;
      }
      // RFC 3042 limited transmit: each of the first duplicates lets one new segment out, to draw the rest.
      const cwnd = this.#inRecovery ? this.#cwnd : this.#cwnd + Math.min(this.#dupAcks, DUP_ACK_THRESHOLD - 1) * this.#mss;
      let usable = seqDiff(seqAdd(this.#sndUna, Math.min(this.#sndWnd, cwnd)), this.#sndNxt);
      // In SACK recovery the pipe, not the bytes since SND.UNA, is what the network holds (RFC 6675 5 (C)).
      if (sackRecovery) usable = Math.min(seqDiff(seqAdd(this.#sndUna, this.#sndWnd), this.#sndNxt), this.#cwnd - this.#pipe());
      const len = Math.min(unsent, this.#mss, usable);
      if (len <= 0) return;
      // RFC 9293 3.8.6.2.1 (sender SWS avoidance): a full segment, all we have, or half the largest window.
      if (!force && len < this.#mss && len < unsent && len < this.#maxSndWnd / 2) return;
      force = false;
      this.#sendNew(len);
    }
  }

  /** Sends `len` bytes from SND.NXT (plus the FIN if they end where it goes) and advances SND.NXT. */
  #sendNew(len: number): void {
    const start = this.#sndNxt;
    const fin = this.#finQueued && seqAdd(start, len) === this.#finSeq();
    const end = seqAdd(start, this.#transmit(start, len, fin));
    // After a timeout SND.NXT starts again from SND.UNA (go-back-N).
    if (seqLt(start, this.#sndMax) && this.#opts.lossCounters) this.#opts.lossCounters.segments_retransmitted++;
    // Karn: time only segments sent for the first time, not one that also repeats bytes.
    if (seqGe(start, this.#sndMax) && this.#rttSeq === undefined) {
      this.#rttSeq = end;
      this.#rttSentAt = this.#now;
    }
    // After a timeout a segment can start below SND.MAX and end past it.
    if (seqGt(end, this.#sndMax)) this.#sndMax = end;
    this.#sndNxt = end;
  }

  /** Sends the segment at `seq` of `len` buffered bytes, and the FIN if asked; returns the sequence space it takes. */
  #transmit(seq: number, len: number, fin: boolean): number {
    // While bytes wait past a gap every segment carries SACK blocks: they come out of the MSS, or
    // a full segment would outgrow the MTU. The FIN then waits for the segment that ends where it goes.
    const room = this.#mss - this.#sackOptionBytes();
    if (len > room) {
      len = room;
      fin = false;
    }
    const offset = seqDiff(seq, this.#dataSeq);
    // Sent before the buffer changes: the stack copies it into the datagram.
    const payload = this.#sendBuf.view(offset, len);
    let flags = Ack;
    if (payload.length > 0 && offset + payload.length === this.#sendBuf.length) flags |= Psh;
    if (fin) flags |= Fin;
    this.#sendRaw(seq, this.#rcvNxt, flags, payload);
    return payload.length + (fin ? 1 : 0);
  }

  /**
   * Resends at most `limit` bytes (and an MSS) of what was sent from `seq`;
   * returns the sequence space resent.
   */
  #retransmitAt(seq: number, limit: number): number {
    const sentData = seqDiff(seqAdd(this.#dataSeq, this.#sendBuf.length), seq);
    const len = Math.max(0, Math.min(limit, this.#mss, sentData, seqDiff(this.#sndMax, seq)));
    // The FIN goes along only if it was sent before: a first FIN has to advance SND.NXT.
    const finOutstanding = this.#finQueued && seqGt(this.#sndMax, this.#finSeq());
    const fin = finOutstanding && seqAdd(seq, len) === this.#finSeq();
    if (len === 0 && !fin) return 0;
    this.#rttSeq = undefined;
    if (this.#opts.lossCounters) this.#opts.lossCounters.segments_retransmitted++;
    return this.#transmit(seq, len, fin);
  }

  #sendSyn(): void {
    // Our SYN always offers scaling and SACK; a SYN-ACK only answers a SYN that offered them.
    const active = this.#state === 'syn-sent';
    const options = encodeTcpOptions({
      mss: this.#ourMss,
      ...((active ? this.#opts.sack !== false : this.#sackOk) && { sackPermitted: true }),
      ...((active || this.#peerScales) && { windowScale: this.#ourShift }),
    });
    const flags = this.#state === 'syn-received' ? Syn | Ack : Syn;
    this.#sendRaw(this.#iss, flags & Ack ? this.#rcvNxt : 0, flags, EMPTY, typeof options === 'string' ? undefined : options);
    if (this.#sndMax === this.#iss) {
      this.#rttSeq = seqAdd(this.#iss, 1);
      this.#rttSentAt = this.#now;
    }
    this.#sndNxt = seqAdd(this.#iss, 1);
    this.#sndMax = this.#sndNxt;
  }

  /**
   * SEQ is SND.MAX: after a timeout SND.NXT falls back, and an ACK numbered
   * below what the peer already has would be dropped as old.
   */
  #sendAck(): void {
    this.#sendRaw(this.#sndMax, this.#rcvNxt, Ack);
  }

  /**
   * The ACK that answers a segment we cannot take. When that segment took no
   * sequence space (a bare ACK or RST) the answer is rate-limited, as Linux
   * does: two ends that disagree about the sequence space (one of them
   * confused or hostile) would otherwise trade ACKs as fast as the link goes.
   */
  #answer(segLen: number): void {
    if (segLen === 0) {
      if (this.#now - this.#answeredAt < ANSWER_INTERVAL) return;
      this.#answeredAt = this.#now;
    }
    this.#sendAck();
  }

  #sendReset(): void {
    this.#sendRaw(this.#sndMax, this.#rcvNxt, Rst | Ack);
  }

  #sendRaw(seq: number, ack: number, flags: number, payload: Uint8Array = EMPTY, options?: Uint8Array): void {
    if (this.#state === 'closed') return;
    const segment: TcpRepr = {
      srcPort: this.#opts.localPort,
      dstPort: this.#opts.remotePort,
      seq,
      ack,
      flags,
      // The window of a SYN is never scaled (RFC 7323 2.2).
      window: flags & Rst ? 0 : flags & Syn ? Math.min(MAX_WINDOW, this.#rcvBuf.free) : this.#windowToAdvertise() >>> this.#rcvShift,
      payload,
    };
    // While bytes wait ahead of a gap, every ACK says which (RFC 2018 4).
    if (options === undefined && this.#sackOk && !this.#ahead.isEmpty && (flags & (Ack | Syn | Rst)) === Ack) {
      options = encodeTcpOptions({ sackBlocks: this.#sackBlocks() }) as Uint8Array;
    }
    if (options !== undefined) segment.options = options;
    if (flags & Ack) this.#ackNeeded = false;
    // The SYN-ACK offers a window too: without this the first read would look like a window worth announcing.
    if ((flags & (Syn | Ack)) === (Syn | Ack)) this.#rcvAdvRight = seqAdd(this.#rcvNxt, segment.window);
    this.#opts.send(segment);
  }

  // --- windows --------------------------------------------------------------------

  /** The room we have for new bytes, as the 16-bit field and our shift can say it (rounded down to what the shift can express). */
  #receiveWindow(): number {
    const unit = 1 << this.#rcvShift;
    return Math.floor(Math.min(MAX_WINDOW * unit, this.#rcvBuf.free) / unit) * unit;
  }

  /**
   * RFC 9293 3.8.6.2.2 (receiver SWS avoidance): the right edge moves only in
   * steps of an MSS or half the buffer, whichever is smaller.
   */
  #windowToAdvertise(): number {
    if (this.#state === 'syn-sent') return this.#receiveWindow();
    const actual = this.#receiveWindow();
    const offered = Math.max(0, Math.min(actual, seqDiff(this.#rcvAdvRight, this.#rcvNxt)));
    if (actual - offered >= this.#windowStep()) {
      this.#rcvAdvRight = seqAdd(this.#rcvNxt, actual);
      return actual;
    }
    return offered;
  }

  /**
   * Whether a read made room worth a segment of its own. Beyond receiver SWS
   * avoidance, as Linux decides (tcp_cleanup_rbuf): only when the window at
   * least doubles, or when the peer is left less than a segment's worth,
   * which its sender may wait on. While the peer still has half the new
   * window to fill, the ACKs of what it sends carry the news anyway; a
   * receiver that reads at once would otherwise send two ACKs per segment.
   */
  #windowUpdateDue(): boolean {
    const offered = Math.max(0, seqDiff(this.#rcvAdvRight, this.#rcvNxt));
    const window = this.#receiveWindow();
    const step = this.#windowStep();
    return window - offered >= step && (offered < step || window >= 2 * offered);
  }

  #windowStep(): number {
    return Math.max(1, Math.min(this.#ourMss, Math.floor(this.#rcvBuf.limit / 2)));
  }

  // --- timers -----------------------------------------------------------------------

  #runTimers(): void {
    const now = this.#now;
    if (this.#connectAt !== undefined && now >= this.#connectAt) {
      this.#fail('connect-timeout');
      return;
    }
    if (this.#timeWaitAt !== undefined && now >= this.#timeWaitAt) {
      this.#terminate({ kind: 'closed' });
      return;
    }
    if (this.#rackAt !== undefined && now >= this.#rackAt && (this.#rtoAt === undefined || now < this.#rtoAt)) {
      this.#rackAt = undefined;
      this.#rackTimeout();
    }
    if (this.#probeTimeoutAt !== undefined && now >= this.#probeTimeoutAt && (this.#rtoAt === undefined || now < this.#rtoAt)) {
      this.#probeTimeoutAt = undefined;
      this.#tailLossProbe();
    }
    if (this.#rtoAt !== undefined && now >= this.#rtoAt) {
      this.#rtoAt = undefined;
      this.#retransmitTimeout();
      if (this.#state === 'closed') return;
    }
    if (this.#persistAt !== undefined && now >= this.#persistAt) {
      this.#persistAt = undefined;
      this.#probe();
    }
  }

  /** A deadline just set, told to the host (timerArmed), which wakes the connection for it. */
  #armed(at: number): number {
    this.#opts.timerArmed?.(at);
    return at;
  }

  #retransmitTimeout(): void {
    const handshake = this.#state === 'syn-sent' || this.#state === 'syn-received';
    if (this.#retries >= (handshake ? MAX_SYN_RETRIES : MAX_DATA_RETRIES)) {
      this.#fail('retransmit-timeout');
      return;
    }
    this.#retries++;
    this.#rto = Math.min(MAX_RTO, this.#rto * 2);
    this.#rttSeq = undefined;
    if (handshake) {
      this.#synRetransmitted = true;
      this.#sendSyn();
      return;
    }
    // RFC 5681 (4): halve once per loss, not again for each retransmission of the same segment.
    if (this.#retries === 1) this.#ssthresh = Math.max(Math.floor(this.#flightSize() / 2), 2 * this.#mss);
    if (this.#opts.lossCounters) this.#opts.lossCounters.retransmit_timeouts++;
    this.#cwnd = this.#mss;
    this.#ackedInAvoidance = 0;
    this.#inRecovery = false;
    this.#dupAcks = 0;
    // RFC 2018 8: after a timeout the SACK information is not trusted (the receiver may have dropped what it held).
    this.#sacked.clear();
    this.#highRxt = 0;
    this.#rackLost = this.#rackPending = this.#sndUna;
    this.#rackAt = undefined;
    this.#recover = this.#sndMax;
    this.#sndNxt = this.#sndUna;
    this.#output();
  }

  /**
   * RFC 8985 7.2: with SACK, one probe after 2 SRTT without an ACK, once per
   * advance of SND.UNA, outside recovery, when it would beat the RTO. A
   * single segment in flight is left to the RTO: the peer may be delaying
   * its ACK.
   */
  #armTailLossProbe(): void {
    // Not while a timeout's go-back-N is still resending (SND.UNA below the recovery point) either.
    const recovering = this.#inRecovery || seqLt(this.#sndUna, this.#recover);
    if (!this.#sackOk || recovering || this.#tailProbed || this.#flightSize() <= this.#mss || !this.#canSend()) {
      this.#probeTimeoutAt = undefined;
      return;
    }
    const pto = Math.max(MIN_PTO, 2 * (this.#srtt ?? INITIAL_RTO / 2));
    if (this.#rtoAt !== undefined && this.#now + pto >= this.#rtoAt) return;
    if (this.#probeTimeoutAt !== undefined) return;
    this.#probeTimeoutAt = this.#armed(this.#now + pto);
  }

  /** RFC 8985 7.3: a new segment if the peer's window takes one, else the last one sent again, to draw an ACK with SACK blocks. */
  #tailLossProbe(): void {
    this.#tailProbed = true;
    if (this.#opts.lossCounters) this.#opts.lossCounters.tail_loss_probes++;
    const room = seqDiff(seqAdd(this.#sndUna, this.#sndWnd), this.#sndNxt);
    const fresh = Math.min(this.#unsent(), this.#mss, room);
    if (fresh > 0 && seqGe(this.#sndNxt, this.#sndMax)) {
      this.#sendNew(fresh);
      return;
    }
    const dataEnd = seqMin(this.#sndMax, seqAdd(this.#dataSeq, this.#sendBuf.length));
    const last = seqMax(this.#sndUna, seqAdd(dataEnd, -this.#mss));
    this.#retransmitAt(last, this.#mss);
  }

  /** The persist timer: the peer's window is closed (or too small to use) and nothing is in flight to reopen it. */
  #probe(): void {
    if (this.#probesUnanswered >= MAX_DATA_RETRIES) {
      this.#fail('retransmit-timeout');
      return;
    }
    this.#probesUnanswered++;
    this.#persistBackoff = Math.min(MAX_RTO, this.#persistBackoff * 2);
    const usable = seqDiff(seqAdd(this.#sndUna, Math.min(this.#sndWnd, this.#cwnd)), this.#sndNxt);
    if (usable > 0) {
      // A window too small for SWS avoidance to use: the override timeout of RFC 9293 3.8.6.2.1.
      this.#output(true);
      return;
    }
    // One byte past the window, without advancing SND.NXT: the peer's ACK tells us its window.
    this.#transmit(this.#sndNxt, 1, false);
    this.#probeEnd = seqMax(this.#probeEnd, seqAdd(this.#sndNxt, 1));
  }

  /** Arms or stops the retransmission and persist timers to match what is outstanding. */
  #updateTimers(): void {
    if (this.#state === 'closed') return;
    if (seqGt(this.#sndNxt, this.#sndUna)) {
      this.#persistAt = undefined;
      this.#rtoAt ??= this.#armed(this.#now + this.#rto);
      this.#armTailLossProbe();
      return;
    }
    this.#rtoAt = undefined;
    this.#probeTimeoutAt = undefined;
    this.#rackAt = undefined;
    if (this.#canSend() && this.#unsent() > 0) this.#persistAt ??= this.#armed(this.#now + Math.max(MIN_RTO, this.#persistBackoff));
    else {
      this.#persistAt = undefined;
      this.#probesUnanswered = 0;
    }
  }

  #sampleRtt(sample: number): void {
    const r = Math.max(0, sample);
    this.#minRtt = Math.min(this.#minRtt ?? r, r);
    if (this.#srtt === undefined) {
      this.#srtt = r;
      this.#rttvar = r / 2;
    } else {
      this.#rttvar = 0.75 * this.#rttvar + 0.25 * Math.abs(this.#srtt - r);
      this.#srtt = 0.875 * this.#srtt + 0.125 * r;
    }
    this.#rto = Math.min(MAX_RTO, Math.max(MIN_RTO, this.#srtt + Math.max(1, 4 * this.#rttvar)));
  }

  #enterTimeWait(): void {
    if (this.#opts.enterTimeWait?.() === false) {
      if (this.#ackNeeded) this.#sendAck();
      // The events already queued (the peer's end) are still delivered, before the close.
      this.#terminate({ kind: 'closed' }, true);
      return;
    }
    this.#state = 'time-wait';
    this.#timeWaitAt = this.#armed(this.#now + this.#timeWaitMs());
    this.#rtoAt = undefined;
    this.#persistAt = undefined;
    this.#probeTimeoutAt = undefined;
    this.#rackAt = undefined;
    // Everything we sent is acknowledged: a busy balancer holds thousands of connections in
    // TIME-WAIT, and each should cost a few hundred bytes, not its buffers.
    this.#sendBuf.clear();
    if (this.#rcvBuf.length === 0) this.#rcvBuf.clear();
  }

  #timeWaitMs(): number {
    const t = this.#opts.timeWait;
    return typeof t === 'number' && t >= 0 ? t : 60_000;
  }

  // --- state helpers ----------------------------------------------------------------

  /** Re-reads the state where TypeScript's narrowing cannot see that a call closed the connection. */
  #isClosed(): boolean {
    return this.#state === 'closed';
  }

  /** The peer's SYN options: MSS, and window scaling when both SYNs offer it (RFC 7323 2.2). */
  #negotiate(options: Uint8Array | undefined): void {
    const parsed = options === undefined ? {} : parseTcpOptions(options, 0, options.length);
    const peer = typeof parsed === 'string' ? DEFAULT_PEER_MSS : (parsed.mss ?? DEFAULT_PEER_MSS);
    this.#mss = Math.min(this.#ourMss, Math.max(MIN_PEER_MSS, peer));
    this.#cwnd = initialCwnd(this.#mss);
    const shift = typeof parsed === 'string' ? undefined : parsed.windowScale;
    this.#peerScales = shift !== undefined;
    // RFC 7323 2.3: a shift above 14 is taken as 14.
    this.#sndShift = this.#peerScales ? Math.min(MAX_SHIFT, shift!) : 0;
    this.#rcvShift = this.#peerScales ? this.#ourShift : 0;
    this.#sackOk = this.#opts.sack !== false && typeof parsed !== 'string' && parsed.sackPermitted === true;
  }

  #canWrite(): boolean {
    if (this.#finQueued) return false;
    const s = this.#state;
    return s === 'syn-sent' || s === 'syn-received' || s === 'established' || s === 'close-wait';
  }

  /** States in which our data and FIN go out. */
  #canSend(): boolean {
    const s = this.#state;
    return s === 'established' || s === 'close-wait' || s === 'fin-wait-1' || s === 'closing' || s === 'last-ack';
  }

  /** Buffered bytes not yet sent (since SND.NXT). */
  #unsent(): number {
    return Math.max(0, seqDiff(seqAdd(this.#dataSeq, this.#sendBuf.length), this.#sndNxt));
  }

  /** Where our FIN goes (meaningful once close() was called, when the buffer stops growing). */
  #finSeq(): number {
    return seqAdd(this.#dataSeq, this.#sendBuf.length);
  }

  #finAcked(): boolean {
    return this.#finQueued && this.#sndUna === seqAdd(this.#finSeq(), 1);
  }

  #flightSize(): number {
    return Math.max(0, seqDiff(this.#sndMax, this.#sndUna));
  }

  /** Gives up: an RST if the peer may hold a synchronized connection, then the reset event. */
  #fail(reason: TcpResetReason): void {
    const s = this.#state;
    if (reason !== 'rst-received' && s !== 'syn-sent' && s !== 'syn-received') this.#sendReset();
    this.#terminate({ kind: 'reset', reason });
  }

  /** Closes the connection; events not yet delivered are dropped, as nothing may follow this one. */
  #terminate(e: TcpEvent, keepQueued = false): void {
    this.#state = 'closed';
    this.#connectAt = this.#timeWaitAt = this.#rtoAt = this.#persistAt = this.#probeTimeoutAt = this.#rackAt = undefined;
    this.#sendBuf.clear();
    if (!keepQueued) this.#events.length = 0;
    this.#events.push(e);
    this.#terminated = true;
  }

  #emit(e: TcpEvent): void {
    if (!this.#terminated) this.#events.push(e);
  }

  /** Delivers queued events; a handler calling back into the connection only appends to the queue. */
  #flush(): void {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      for (let e = this.#events.shift(); e !== undefined; e = this.#events.shift()) this.#opts.event(e);
    } finally {
      this.#flushing = false;
    }
  }
}

function earliest(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined || (b !== undefined && b < a) ? b : a;
}

/** RFC 5681 3.1's initial window. */
function initialCwnd(mss: number): number {
  return Math.min(4 * mss, Math.max(2 * mss, 4380));
}
