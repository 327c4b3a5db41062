/*
 * The contract between generated code and the runtime that calls it
 * (architecture.md: "a filter chain is a list of functions (packet, stack,
 * ctEntry) -> verdict").
 */

/** What a generated function reads: the IPv4 datagram inside a buffer. */
export interface PacketView {
  bytes: Uint8Array;
  /** Offset of the IPv4 header. */
  l3: number;
  /** Offset of the TCP/UDP/ICMP header. */
  l4: number;
  /** End of the IP datagram. */
  end: number;
}

/** Per-call state a generated function writes: which rule decided. */
export interface FunctionState {
  /** Index into the module's `rules` of the rule that decided; -1 = none (fell off the end); -2 = no conntrack entry. */
  rule: number;
  /**
   * Set by `run`: the position, in the segment, of the function whose verdict
   * was returned. The caller sets it to 0 before the call.
   */
  step: number;
}

export const RULE_NONE = -1;
export const RULE_NO_CONNTRACK = -2;

/** Verdicts as generated functions return them. */
export const DROP = 0;
export const ACCEPT = 1;

/** What the runtime hands the generated module when it instantiates it. */
export interface GeneratedRuntime {
  /**
   * Whether log/syslog output goes anywhere. When false the text is not even
   * built (benchmarks measure deciding, not formatting). Read once, at load.
   */
  readonly logEnabled: boolean;
  /** `ct.state` of a conntrack handle (CT_STATE codes; a negative handle is never passed). */
  ctState(ct: number): number;
  /** `log(...)`: text already concatenated. */
  log(state: FunctionState, text: string): void;
  /** `syslog(SEVERITY, ...)`. */
  syslog(state: FunctionState, severity: number, text: string): void;
  /**
   * `dnat`/`snat`: rewrite the packet and the conntrack entry; address as a
   * number or -1, port or -1. False when the translation is impossible (no
   * free tuple, a packet too short to rewrite): the packet is dropped rather
   * than passed on untranslated.
   */
  nat(kind: 'dnat' | 'snat', packet: PacketView, ct: number, address: number, port: number): boolean;
}

/** Observes a traced run (`nacl trace`): only the trace variant of the code calls it. */
export interface TraceSink {
  enter(functionName: string): void;
  /** A condition was evaluated: its rule, the fields it read and their values, and the result. */
  condition(rule: number, fields: Record<string, number>, result: boolean): boolean;
  /** A nested block or call met its protocol guard. */
  guard(rule: number, protocol: string, passed: boolean): boolean;
  statement(rule: number): void;
}

/** A generated function: ACCEPT (1) or DROP (0). */
export type GeneratedFunction = (packet: PacketView, state: FunctionState, ct: number) => number;

export interface GeneratedModule {
  readonly functions: Readonly<Record<string, GeneratedFunction>>;
  /** Rule ids, indexed by `FunctionState.rule`. */
  readonly rules: readonly string[];
  /** The function names of each segment (compiler/codegen/segments.ts). */
  readonly segments: readonly (readonly string[])[];
  /**
   * Runs segment k's functions in order: DROP stops at once, ACCEPT goes on
   * to the next (nacl-language.md 8.3). Returns the last verdict; the state
   * names the rule and the function that gave it.
   */
  readonly run: (segment: number, packet: PacketView, state: FunctionState, ct: number) => number;
  /**
   * Times each rule decided, by rule index. `run` counts here the accepts
   * that let a packet go on to the next function of a segment; the caller
   * counts the decision `run` returns (it is in `state.rule`).
   */
  readonly hits: Int32Array;
}
