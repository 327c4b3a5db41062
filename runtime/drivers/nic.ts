/**
 * A network interface card as the runtime sees it: it moves batches of
 * Ethernet frames and nothing else (architecture.md, "drivers"). Frames are
 * whole Ethernet II frames without the FCS. A driver owns the buffers it
 * passes to `onReceive` only for the duration of the call; a receiver that
 * keeps a frame must copy it.
 */
export interface Nic {
  /** Six bytes. */
  readonly mac: Uint8Array;
  /** Largest IP packet the link carries (1500 for Ethernet). */
  readonly mtu: number;
  /**
   * Transmit frames; never throws on a full queue (frames are dropped and
   * counted instead). A driver keeps neither the array nor, unless it copies
   * them, the frames once send returns, and never calls a receive handler
   * from inside send.
   */
  send(frames: readonly Uint8Array[]): void;
  /** Installs the receive handler; called with each batch of received frames. */
  onReceive(handler: (frames: readonly Uint8Array[]) => void): void;
  /** Detach from the device and release it. */
  close(): void | Promise<void>;
  /** Counters of this NIC (frames/bytes in and out, drops by reason). */
  readonly counters: Record<string, number>;
}
