/**
 * TCP options (RFC 9293 3.2, RFC 7323, RFC 2018): parsed on demand - on a
 * SYN, or when the stack wants timestamps - never for every segment.
 */

import type { EmitError } from './error.ts';
import { bytesAvailable, readU16, readU32, writeU16, writeU32 } from './field.ts';

const KIND_EOL = 0;
const KIND_NOP = 1;
const KIND_MSS = 2;
const KIND_WINDOW_SCALE = 3;
const KIND_SACK_PERMITTED = 4;
const KIND_SACK = 5;
const KIND_TIMESTAMP = 8;

const LEN_MSS = 4;
const LEN_WINDOW_SCALE = 3;
const LEN_SACK_PERMITTED = 2;
const LEN_TIMESTAMP = 10;
const SACK_BLOCK_LEN = 8;
/** 40 option bytes hold at most 4 blocks (3 next to timestamps). */
const MAX_SACK_BLOCKS = 4;
const MAX_OPTIONS_LEN = 40;

export interface SackBlock {
  left: number;
  right: number;
}

export interface TcpOptions {
  mss?: number;
  /** The shift as sent; RFC 7323 2.3 says to use at most 14, which is the TCP layer's call. */
  windowScale?: number;
  sackPermitted?: boolean;
  timestamp?: { value: number; echo: number };
  sackBlocks?: SackBlock[];
}

/**
 * An option whose length byte is below 2 or runs past the header, or a known
 * option with the wrong length. Linux skips such options instead; a caller
 * that wants that can treat the error as "no options".
 */
export type TcpOptionError = 'bad-option';

/** Unknown kinds are skipped by their length; End of Option List stops the scan. */
export function parseTcpOptions(bytes: Uint8Array, start: number, end: number): TcpOptions | TcpOptionError {
  const options: TcpOptions = {};
  const stop = start + bytesAvailable(bytes, start, end);
  let at = start;
  while (at < stop) {
    const kind = bytes[at]!;
    if (kind === KIND_EOL) break;
    if (kind === KIND_NOP) {
      at += 1;
      continue;
    }
    if (at + 1 >= stop) return 'bad-option';
    const length = bytes[at + 1]!;
    if (length < 2 || at + length > stop) return 'bad-option';
    switch (kind) {
      case KIND_MSS:
        if (length !== LEN_MSS) return 'bad-option';
        options.mss = readU16(bytes, at + 2);
        break;
      case KIND_WINDOW_SCALE:
        if (length !== LEN_WINDOW_SCALE) return 'bad-option';
        options.windowScale = bytes[at + 2]!;
        break;
      case KIND_SACK_PERMITTED:
        if (length !== LEN_SACK_PERMITTED) return 'bad-option';
        options.sackPermitted = true;
        break;
      case KIND_SACK: {
        const blocks = (length - 2) / SACK_BLOCK_LEN;
        if (!Number.isInteger(blocks) || blocks < 1 || blocks > MAX_SACK_BLOCKS) return 'bad-option';
        options.sackBlocks = [];
        for (let i = 0; i < blocks; i++) {
          const block = at + 2 + i * SACK_BLOCK_LEN;
          options.sackBlocks.push({ left: readU32(bytes, block), right: readU32(bytes, block + 4) });
        }
        break;
      }
      case KIND_TIMESTAMP:
        if (length !== LEN_TIMESTAMP) return 'bad-option';
        options.timestamp = { value: readU32(bytes, at + 2), echo: readU32(bytes, at + 6) };
        break;
      default:
        break;
    }
    at += length;
  }
  return options;
}

/**
 * Option bytes in the order and alignment Linux uses (tcp_options_write):
 * MSS; SACK-permitted folded into the timestamp's NOP padding; NOP + window
 * scale; NOP NOP + SACK blocks. A SYN from us then looks like a Linux SYN.
 */
export function encodeTcpOptions(options: TcpOptions): Uint8Array | EmitError {
  const out = new Uint8Array(MAX_OPTIONS_LEN);
  let at = 0;
  if (options.mss !== undefined) {
    out[at] = KIND_MSS;
    out[at + 1] = LEN_MSS;
    writeU16(out, at + 2, options.mss);
    at += LEN_MSS;
  }
  if (options.timestamp) {
    if (options.sackPermitted) {
      out[at] = KIND_SACK_PERMITTED;
      out[at + 1] = LEN_SACK_PERMITTED;
    } else {
      out[at] = KIND_NOP;
      out[at + 1] = KIND_NOP;
    }
    out[at + 2] = KIND_TIMESTAMP;
    out[at + 3] = LEN_TIMESTAMP;
    writeU32(out, at + 4, options.timestamp.value);
    writeU32(out, at + 8, options.timestamp.echo);
    at += 12;
  } else if (options.sackPermitted) {
    out[at] = KIND_NOP;
    out[at + 1] = KIND_NOP;
    out[at + 2] = KIND_SACK_PERMITTED;
    out[at + 3] = LEN_SACK_PERMITTED;
    at += 4;
  }
  if (options.windowScale !== undefined) {
    out[at] = KIND_NOP;
    out[at + 1] = KIND_WINDOW_SCALE;
    out[at + 2] = LEN_WINDOW_SCALE;
    out[at + 3] = options.windowScale;
    at += 4;
  }
  const blocks = options.sackBlocks ?? [];
  if (blocks.length > 0) {
    if (at + 4 + blocks.length * SACK_BLOCK_LEN > MAX_OPTIONS_LEN || blocks.length > MAX_SACK_BLOCKS) {
      return 'field-out-of-range';
    }
    out[at] = KIND_NOP;
    out[at + 1] = KIND_NOP;
    out[at + 2] = KIND_SACK;
    out[at + 3] = 2 + blocks.length * SACK_BLOCK_LEN;
    at += 4;
    for (const block of blocks) {
      writeU32(out, at, block.left);
      writeU32(out, at + 4, block.right);
      at += SACK_BLOCK_LEN;
    }
  }
  return out.slice(0, at);
}
