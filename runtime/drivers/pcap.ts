import { open, readFile } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import { ETHERNET_HEADER_LEN } from '../wire/ethernet.ts';
import { ownMac } from './mac.ts';
import type { Nic } from './nic.ts';

/**
 * Classic libpcap capture files (pcap-savefile(5); draft-ietf-opsawg-pcap):
 * a 24-byte file header, then per frame a 16-byte record header and the
 * captured bytes. Written little-endian with microsecond timestamps and link
 * type 1 (Ethernet), which every tool reads; read in either byte order, with
 * microsecond or nanosecond timestamps. pcapng is a different format and is
 * recognised only to say so.
 *
 * Also here: the `pcap:IN[,OUT]` driver (`openPcapNic`) and `recordNic`, a
 * middleware that records any NIC's traffic, as smoltcp's
 * phy::PcapWriter does (for `--pcap-out DIR`).
 */

// --- file format -------------------------------------------------------------

const MAGIC_MICRO = 0xa1b2c3d4;
const MAGIC_NANO = 0xa1b23c4d;
/** Its byte-order magic 0x1a2b3c4d, read as the first of a file's 4 bytes in either order. */
const PCAPNG_SECTION_HEADER = 0x0a0d0d0a;

// File header.
const F_MAGIC = 0;
const F_VERSION_MAJOR = 4;
const F_VERSION_MINOR = 6;
const F_THISZONE = 8;
const F_SIGFIGS = 12;
const F_SNAPLEN = 16;
const F_LINKTYPE = 20;
export const PCAP_FILE_HEADER_LEN = 24;

// Record header.
const R_TS_SEC = 0;
const R_TS_FRACTION = 4;
const R_INCL_LEN = 8;
const R_ORIG_LEN = 12;
export const PCAP_RECORD_HEADER_LEN = 16;

export const LINKTYPE_ETHERNET = 1;
/** What the writer captures of each frame by default: all of any Ethernet frame up to 64 KiB. */
export const PCAP_DEFAULT_SNAPLEN = 65535;
/**
 * libpcap's MAXIMUM_SNAPLEN: a file header claiming snaplen 0 (some writers
 * do) is read as this.
 */
const MAXIMUM_SNAPLEN = 262144;

export interface PcapHeader {
  readonly byteOrder: 'little' | 'big';
  /** Of the record timestamps' fraction field. */
  readonly resolution: 'micro' | 'nano';
  readonly versionMajor: number;
  readonly versionMinor: number;
  readonly snaplen: number;
  /** LINKTYPE_* value (the low 16 bits of the field; the rest is FCS information). */
  readonly linkType: number;
}

export interface PcapRecord {
  /** Where the record header starts in the file. */
  readonly offset: number;
  /** Capture time: whole seconds since the Unix epoch... */
  readonly seconds: number;
  /** ...plus this, whatever the file's resolution (a microsecond file gives multiples of 1000). */
  readonly nanoseconds: number;
  /** The frame's length on the wire; more than `data.length` when the capture cut it at snaplen. */
  readonly originalLength: number;
  /** The captured bytes: a view into the file's buffer, not a copy. */
  readonly data: Uint8Array;
}

export type PcapErrorCode =
  | 'truncated-file-header'
  | 'not-pcap'
  | 'pcapng'
  | 'unsupported-version'
  | 'truncated-record-header'
  | 'truncated-record'
  | 'record-exceeds-snaplen';

/** Bad bytes are a value, not an exception; `offset` is where in the file the problem starts. */
export interface PcapError {
  readonly error: PcapErrorCode;
  readonly offset: number;
  readonly message: string;
}

export function isPcapError(value: object): value is PcapError {
  return 'error' in value;
}

/**
 * Reads a capture held in memory, record by record. `next()` never throws:
 * it returns a record, `undefined` at the clean end of the file, or the
 * error that stops reading (again on every later call).
 */
export class PcapReader {
  readonly header: PcapHeader;
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #little: boolean;
  readonly #fractionScale: number;
  readonly #snaplen: number;
  #offset = PCAP_FILE_HEADER_LEN;
  #error: PcapError | undefined;

  /** A reader positioned on the first record, or why `bytes` is no capture file. */
  static open(file: Uint8Array): PcapReader | PcapError {
    // Records are views of plain Uint8Arrays even when the file came as a Buffer (readFile's).
    const bytes = new Uint8Array(file.buffer, file.byteOffset, file.byteLength);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.length < 4) return fail('truncated-file-header', 0, `the file is ${bytes.length} bytes long; a pcap file header is ${PCAP_FILE_HEADER_LEN}`);
    const magic = view.getUint32(F_MAGIC, true);
    const swapped = view.getUint32(F_MAGIC, false);
    if (magic === PCAPNG_SECTION_HEADER)
      return fail('pcapng', 0, 'this is a pcapng file, not pcap: convert it with `editcap -F pcap IN OUT` or `tshark -F pcap -r IN -w OUT`');
    // The writer's byte order is whichever reading of the magic makes sense.
    const little = magic === MAGIC_MICRO || magic === MAGIC_NANO;
    if (!little && swapped !== MAGIC_MICRO && swapped !== MAGIC_NANO)
      return fail('not-pcap', 0, `magic number 0x${swapped.toString(16).padStart(8, '0')} is not that of a pcap file (0xa1b2c3d4 or 0xa1b23c4d)`);
    const resolution = (little ? magic : swapped) === MAGIC_NANO ? 'nano' : 'micro';
    if (bytes.length < PCAP_FILE_HEADER_LEN)
      return fail('truncated-file-header', 0, `the file is ${bytes.length} bytes long; a pcap file header is ${PCAP_FILE_HEADER_LEN}`);
    const versionMajor = view.getUint16(F_VERSION_MAJOR, little);
    const versionMinor = view.getUint16(F_VERSION_MINOR, little);
    if (versionMajor !== 2) return fail('unsupported-version', F_VERSION_MAJOR, `pcap version ${versionMajor}.${versionMinor} is not 2.x`);
    const header: PcapHeader = {
      byteOrder: little ? 'little' : 'big',
      resolution,
      versionMajor,
      versionMinor,
      snaplen: view.getUint32(F_SNAPLEN, little),
      linkType: view.getUint32(F_LINKTYPE, little) & 0xffff,
    };
    return new PcapReader(bytes, view, header);
  }

  private constructor(bytes: Uint8Array, view: DataView, header: PcapHeader) {
    this.#bytes = bytes;
    this.#view = view;
    this.header = header;
    this.#little = header.byteOrder === 'little';
    this.#fractionScale = header.resolution === 'nano' ? 1 : 1000;
    this.#snaplen = header.snaplen === 0 ? MAXIMUM_SNAPLEN : header.snaplen;
  }

  /** Where the next record starts. */
  get offset(): number {
    return this.#offset;
  }

  next(): PcapRecord | PcapError | undefined {
    if (this.#error !== undefined) return this.#error;
    const at = this.#offset;
    const left = this.#bytes.length - at;
    if (left === 0) return undefined;
    if (left < PCAP_RECORD_HEADER_LEN)
      return this.#fail('truncated-record-header', at, `the file ends ${left} bytes into a ${PCAP_RECORD_HEADER_LEN}-byte record header`);
    const v = this.#view;
    const little = this.#little;
    const captured = v.getUint32(at + R_INCL_LEN, little);
    if (captured > this.#snaplen)
      return this.#fail('record-exceeds-snaplen', at + R_INCL_LEN, `a record claims ${captured} captured bytes, more than the file's snaplen of ${this.#snaplen}`);
    const start = at + PCAP_RECORD_HEADER_LEN;
    if (this.#bytes.length - start < captured)
      return this.#fail('truncated-record', start, `the file ends ${this.#bytes.length - start} bytes into a ${captured}-byte record`);
    this.#offset = start + captured;
    return {
      offset: at,
      seconds: v.getUint32(at + R_TS_SEC, little),
      nanoseconds: v.getUint32(at + R_TS_FRACTION, little) * this.#fractionScale,
      originalLength: v.getUint32(at + R_ORIG_LEN, little),
      data: this.#bytes.subarray(start, start + captured),
    };
  }

  #fail(error: PcapErrorCode, offset: number, message: string): PcapError {
    this.#error = fail(error, offset, message);
    return this.#error;
  }
}

export type PcapContents =
  | { readonly ok: true; readonly header: PcapHeader; readonly records: PcapRecord[] }
  /** The records before the error are kept: a capture cut short by a killed tcpdump is still worth reading. */
  | { readonly ok: false; readonly header: PcapHeader | undefined; readonly records: PcapRecord[]; readonly error: PcapError };

/** Every record of a capture held in memory. Never throws. */
export function readPcap(bytes: Uint8Array): PcapContents {
  const reader = PcapReader.open(bytes);
  if (isPcapError(reader)) return { ok: false, header: undefined, records: [], error: reader };
  const records: PcapRecord[] = [];
  for (;;) {
    const r = reader.next();
    if (r === undefined) return { ok: true, header: reader.header, records };
    if (isPcapError(r)) return { ok: false, header: reader.header, records, error: r };
    records.push(r);
  }
}

export interface PcapFileOptions {
  /** Default 65535: longer frames are cut, keeping their original length. */
  snaplen?: number;
  /** Default 1, Ethernet. */
  linkType?: number;
}

/** The 24-byte file header the writer emits: little-endian, version 2.4, microseconds. */
export function encodePcapHeader(options: PcapFileOptions = {}): Uint8Array {
  const bytes = new Uint8Array(PCAP_FILE_HEADER_LEN);
  const v = new DataView(bytes.buffer);
  v.setUint32(F_MAGIC, MAGIC_MICRO, true);
  v.setUint16(F_VERSION_MAJOR, 2, true);
  v.setUint16(F_VERSION_MINOR, 4, true);
  v.setInt32(F_THISZONE, 0, true); // timestamps are UTC
  v.setUint32(F_SIGFIGS, 0, true); // "in practice, all tools set it to 0"
  v.setUint32(F_SNAPLEN, checkSnaplen(options.snaplen ?? PCAP_DEFAULT_SNAPLEN), true);
  v.setUint32(F_LINKTYPE, options.linkType ?? LINKTYPE_ETHERNET, true);
  return bytes;
}

/**
 * One record: header and the first `snaplen` bytes of `frame`, stamped
 * `time` (milliseconds since the Unix epoch, fractions kept to the
 * microsecond).
 */
export function encodePcapRecord(frame: Uint8Array, time: number, snaplen = PCAP_DEFAULT_SNAPLEN): Uint8Array {
  const captured = Math.min(frame.length, snaplen);
  const bytes = new Uint8Array(PCAP_RECORD_HEADER_LEN + captured);
  const micros = Math.max(0, Math.round(time * 1000));
  const seconds = Math.floor(micros / 1e6);
  const v = new DataView(bytes.buffer);
  v.setUint32(R_TS_SEC, seconds % 2 ** 32, true);
  v.setUint32(R_TS_FRACTION, micros - seconds * 1e6, true);
  v.setUint32(R_INCL_LEN, captured, true);
  v.setUint32(R_ORIG_LEN, frame.length, true);
  bytes.set(frame.subarray(0, captured), PCAP_RECORD_HEADER_LEN);
  return bytes;
}

// --- writer ------------------------------------------------------------------

export interface PcapWriterOptions extends PcapFileOptions {
  /** Timestamps, in milliseconds since the Unix epoch; default `Date.now`. Inject one for reproducible files. */
  clock?: () => number;
}

/** Records are gathered for one turn of the event loop, or this many bytes, then written in one go. */
const CHUNK_BYTES = 64 * 1024;
/** Beyond this many bytes waiting for a slow disk, records are dropped rather than piled up in memory. */
const BACKLOG_LIMIT = 16 * 1024 * 1024;

/**
 * Writes a capture to a stream: the file header at once, then a record per
 * `write`. Never throws on a write: a full backlog or a failed stream drops
 * the record and counts it. `close()` rejects if the stream failed.
 */
export class PcapWriter {
  readonly counters = { records: 0, bytes: 0, dropped: 0 };
  readonly #sink: Writable;
  readonly #clock: () => number;
  readonly #snaplen: number;
  #chunk: Uint8Array[] = [];
  #chunkBytes = 0;
  #turn: NodeJS.Immediate | undefined;
  #lastWrite: Promise<void> = Promise.resolve();
  #error: Error | undefined;
  #closed: Promise<void> | undefined;

  /** Creates (or empties) the file at `path`; rejects with a readable Error if it cannot. */
  static async open(path: string, options: PcapWriterOptions = {}): Promise<PcapWriter> {
    const handle = await open(path, 'w').catch((e: NodeJS.ErrnoException) => {
      throw Object.assign(new Error(`cannot create capture file '${path}': ${e.message}`), { code: e.code });
    });
    return new PcapWriter(handle.createWriteStream(), options);
  }

  /** Writes to `sink`, which `close()` ends. */
  constructor(sink: Writable, options: PcapWriterOptions = {}) {
    this.#sink = sink;
    this.#clock = options.clock ?? Date.now;
    this.#snaplen = checkSnaplen(options.snaplen ?? PCAP_DEFAULT_SNAPLEN);
    sink.on('error', (e: Error) => (this.#error ??= e));
    this.#queue(encodePcapHeader(options));
  }

  /** Why the stream failed, if it did; records written since were dropped. */
  get error(): Error | undefined {
    return this.#error;
  }

  /** Records `frame` (a copy is taken at once), stamped `time` or the clock's now. */
  write(frame: Uint8Array, time: number = this.#clock()): void {
    if (this.#closed !== undefined || this.#error !== undefined || this.#sink.writableLength + this.#chunkBytes > BACKLOG_LIMIT) {
      this.counters.dropped++;
      return;
    }
    this.counters.records++;
    this.counters.bytes += Math.min(frame.length, this.#snaplen);
    this.#queue(encodePcapRecord(frame, time, this.#snaplen));
  }

  /** Resolves when everything written so far has reached the stream's target. */
  flush(): Promise<void> {
    this.#drain();
    return this.#lastWrite;
  }

  /** Flushes and ends the stream; rejects with the stream's error if it failed. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      await this.flush().catch(() => {});
      // 'finish': every byte has reached the target (for a file, the kernel).
      await new Promise<void>((resolve) => {
        if (this.#sink.destroyed || this.#sink.writableFinished) resolve();
        else {
          this.#sink.once('error', () => resolve());
          this.#sink.end(() => resolve());
        }
      });
      if (this.#error !== undefined) throw this.#error;
    })();
    return this.#closed;
  }

  #queue(bytes: Uint8Array): void {
    this.#chunk.push(bytes);
    this.#chunkBytes += bytes.length;
    if (this.#chunkBytes >= CHUNK_BYTES) this.#drain();
    else this.#turn ??= setImmediate(() => this.#drain());
  }

  #drain(): void {
    if (this.#turn !== undefined) clearImmediate(this.#turn);
    this.#turn = undefined;
    if (this.#chunkBytes === 0 || this.#error !== undefined || this.#sink.destroyed) return;
    const chunk = Buffer.concat(this.#chunk, this.#chunkBytes);
    this.#chunk = [];
    this.#chunkBytes = 0;
    this.#lastWrite = new Promise((resolve) => {
      this.#sink.write(chunk, (e) => {
        if (e) this.#error ??= e;
        resolve();
      });
    });
  }
}

// --- record middleware -------------------------------------------------------

export interface RecordOptions {
  /** Which frames to record; default both, in the order they pass. */
  direction?: 'both' | 'rx' | 'tx';
}

/**
 * Wraps `nic` so that every frame it receives or is given to send is also
 * written to `writer` (before it is handed on, so a frame the device then
 * drops is still in the capture). The wrapper owns the writer: `close()`
 * closes the NIC, then the writer.
 */
export function recordNic(nic: Nic, writer: PcapWriter, options: RecordOptions = {}): Nic {
  const direction = options.direction ?? 'both';
  const rx = direction !== 'tx';
  const tx = direction !== 'rx';
  return {
    mac: nic.mac,
    mtu: nic.mtu,
    get counters() {
      return nic.counters;
    },
    send(frames) {
      if (tx) for (const frame of frames) writer.write(frame);
      nic.send(frames);
    },
    onReceive(handler) {
      nic.onReceive(
        rx
          ? (frames) => {
              for (const frame of frames) writer.write(frame);
              handler(frames);
            }
          : handler,
      );
    },
    async close() {
      try {
        await nic.close();
      } finally {
        await writer.close();
      }
    },
  };
}

// --- the pcap:IN[,OUT] driver ------------------------------------------------

export interface PcapNicOptions {
  /** Capture whose frames the NIC receives; none: it receives nothing. */
  input?: string;
  /** File that records every frame sent; none: sent frames are counted and discarded. */
  output?: string;
  /** Timestamps of the output records, in milliseconds since the Unix epoch; default `Date.now`. */
  clock?: () => number;
  /**
   * 'asap' (default): batch after batch, one per turn of the event loop.
   * 'timed': keeping the capture's gaps between frames.
   */
  replayRate?: 'asap' | 'timed';
  /** Most frames per `onReceive` call; default 64. */
  batchSize?: number;
  /** A random locally administered one by default. */
  mac?: Uint8Array;
  /** Default 1500. */
  mtu?: number;
}

export interface PcapReplayEnd {
  /** Frames handed to the receive handler. */
  readonly frames: number;
  /** Why replay stopped before the end of the file: the records after it were not replayed. */
  readonly error: PcapError | undefined;
  /** Whether `close()` ended the replay before the input was exhausted. */
  readonly stopped: boolean;
}

export interface PcapNic extends Nic {
  /** Resolves when the input is exhausted (at once without input) or the NIC is closed. */
  readonly replayDone: Promise<PcapReplayEnd>;
  readonly counters: {
    [name: string]: number;
    rx_frames: number;
    rx_bytes: number;
    rx_batches: number;
    /** Records that hold less than the whole frame (the capture's snaplen cut it): a NIC never delivers part of a frame. */
    rx_dropped_snapped: number;
    /** Records shorter than an Ethernet header. */
    rx_dropped_short: number;
    tx_frames: number;
    tx_bytes: number;
    /** Sent after close, or while the output's backlog was full. */
    tx_dropped: number;
  };
}

/**
 * The `pcap:IN[,OUT]` driver. Reads the whole input at open and rejects
 * with a readable Error when it is not a pcap capture of Ethernet frames; a
 * capture that is cut short or corrupt further in replays up to the damage
 * and reports it in `replayDone`. Replay starts after the first `onReceive`.
 */
export async function openPcapNic(options: PcapNicOptions): Promise<PcapNic> {
  const mac = ownMac(options.mac);
  let records: PcapRecord[] = [];
  let error: PcapError | undefined;
  if (options.input !== undefined) {
    const path = options.input;
    const bytes = await readFile(path).catch((e: NodeJS.ErrnoException) => {
      throw Object.assign(new Error(`pcap NIC: cannot read '${path}': ${e.message}`), { code: e.code });
    });
    const contents = readPcap(bytes);
    const header = contents.header;
    if (header === undefined) throw new Error(`pcap NIC: '${path}': ${contents.ok ? '' : contents.error.message}`);
    if (header.linkType !== LINKTYPE_ETHERNET) throw new Error(`pcap NIC: '${path}' holds link type ${header.linkType}, not Ethernet (1)`);
    records = contents.records;
    if (!contents.ok) error = contents.error;
  }
  const writer = options.output === undefined ? undefined : await PcapWriter.open(options.output, { clock: options.clock ?? Date.now });
  const batchSize = options.batchSize ?? 64;
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`pcap NIC: batchSize must be a whole number from 1, got ${batchSize}`);
  return new PcapDevice(mac, options.mtu ?? 1500, records, error, writer, options.replayRate ?? 'asap', batchSize);
}

class PcapDevice implements PcapNic {
  readonly mac: Uint8Array;
  readonly mtu: number;
  readonly replayDone: Promise<PcapReplayEnd>;
  readonly counters = {
    rx_frames: 0,
    rx_bytes: 0,
    rx_batches: 0,
    rx_dropped_snapped: 0,
    rx_dropped_short: 0,
    tx_frames: 0,
    tx_bytes: 0,
    tx_dropped: 0,
  };
  readonly #records: PcapRecord[];
  readonly #inputError: PcapError | undefined;
  readonly #writer: PcapWriter | undefined;
  readonly #timed: boolean;
  readonly #batchSize: number;
  #next = 0;
  #handler: ((frames: readonly Uint8Array[]) => void) | undefined;
  #turn: NodeJS.Immediate | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** performance.now() when replay started, for 'timed'. */
  #startedAt = 0;
  #finish!: (end: PcapReplayEnd) => void;
  #finished = false;
  #closed: Promise<void> | undefined;

  constructor(
    mac: Uint8Array,
    mtu: number,
    records: PcapRecord[],
    inputError: PcapError | undefined,
    writer: PcapWriter | undefined,
    rate: 'asap' | 'timed',
    batchSize: number,
  ) {
    this.mac = mac;
    this.mtu = mtu;
    this.#records = records;
    this.#inputError = inputError;
    this.#writer = writer;
    this.#timed = rate === 'timed';
    this.#batchSize = batchSize;
    this.replayDone = new Promise((resolve) => (this.#finish = resolve));
    if (records.length === 0) this.#end(false);
  }

  send(frames: readonly Uint8Array[]): void {
    const c = this.counters;
    for (const frame of frames) {
      if (this.#closed !== undefined) {
        c.tx_dropped++;
        continue;
      }
      if (this.#writer !== undefined) {
        const before = this.#writer.counters.dropped;
        this.#writer.write(frame);
        if (this.#writer.counters.dropped !== before) {
          c.tx_dropped++;
          continue;
        }
      }
      c.tx_frames++;
      c.tx_bytes += frame.length;
    }
  }

  onReceive(handler: (frames: readonly Uint8Array[]) => void): void {
    const first = this.#handler === undefined;
    this.#handler = handler;
    if (first && !this.#finished) {
      this.#turn = setImmediate(() => {
        this.#startedAt = performance.now();
        this.#replay();
      });
    }
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      clearImmediate(this.#turn);
      clearTimeout(this.#timer);
      this.#end(true);
      await this.#writer?.close();
    })();
    return this.#closed;
  }

  #replay(): void {
    this.#turn = undefined;
    this.#timer = undefined;
    const records = this.#records;
    const end = Math.min(records.length, this.#next + this.#batchSize);
    let stop = end;
    if (this.#timed) {
      const elapsed = performance.now() - this.#startedAt;
      stop = this.#next;
      while (stop < end && this.#due(records[stop]!) <= elapsed) stop++;
    }
    const batch: Uint8Array[] = [];
    const c = this.counters;
    for (; this.#next < stop; this.#next++) {
      const r = records[this.#next]!;
      if (r.data.length < r.originalLength) c.rx_dropped_snapped++;
      else if (r.data.length < ETHERNET_HEADER_LEN) c.rx_dropped_short++;
      else {
        batch.push(r.data);
        c.rx_bytes += r.data.length;
      }
    }
    if (batch.length > 0) {
      c.rx_batches++;
      c.rx_frames += batch.length;
    }
    // Scheduled before the handler runs, so a handler that throws does not stall the replay.
    if (this.#next >= records.length) this.#end(false);
    else if (!this.#timed || this.#due(records[this.#next]!) <= performance.now() - this.#startedAt) this.#turn = setImmediate(() => this.#replay());
    else this.#timer = setTimeout(() => this.#replay(), this.#due(records[this.#next]!) - (performance.now() - this.#startedAt));
    if (batch.length > 0) this.#handler!(batch);
  }

  /** Milliseconds after the first record that `r` is due. */
  #due(r: PcapRecord): number {
    const first = this.#records[0]!;
    return (r.seconds - first.seconds) * 1000 + (r.nanoseconds - first.nanoseconds) / 1e6;
  }

  #end(stopped: boolean): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#finish({ frames: this.counters.rx_frames, error: this.#inputError, stopped: stopped && this.#next < this.#records.length });
  }
}

function checkSnaplen(snaplen: number): number {
  if (!Number.isInteger(snaplen) || snaplen < 1 || snaplen > 0xffffffff) throw new RangeError(`a pcap snaplen is a whole number of bytes from 1, got ${snaplen}`);
  return snaplen;
}

function fail(error: PcapErrorCode, offset: number, message: string): PcapError {
  return { error, offset, message: `${message} (at byte ${offset})` };
}
