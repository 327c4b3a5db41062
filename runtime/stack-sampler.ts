import { Session } from 'node:inspector';

/*
 * The Timer item `stack-sampling` (runtime-semantics.md 8.2): upstream
 * samples the stack on a timer interrupt and prints the functions the
 * samples landed in most. Here V8's own sampling profiler does the
 * sampling, through an in-process inspector session, whose commands
 * complete synchronously. Only an image whose Timers ask for it pays for
 * the profiler; each report restarts it, a pause of a few milliseconds.
 */

/** Samples since the previous report: how many, and the functions they landed in, most first. */
export interface StackSamples {
  readonly total: number;
  readonly functions: readonly { readonly name: string; readonly count: number }[];
}

/** The part of a V8 CPU profile (Profiler.stop) that counting needs. */
export interface SampledProfile {
  readonly nodes: readonly { readonly id: number; readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number; readonly columnNumber: number } }[];
  readonly samples?: readonly number[];
}

/** One microsecond is V8's unit; a millisecond is upstream's timer tick order and cheap. */
const SAMPLING_INTERVAL_US = 1000;

export class StackSampler {
  readonly #session: Session;

  private constructor(session: Session) {
    this.#session = session;
  }

  /** Starts sampling; undefined when this Node has no inspector (built without it). */
  static start(): StackSampler | undefined {
    try {
      const session = new Session();
      session.connect();
      const sampler = new StackSampler(session);
      sampler.#post('Profiler.enable');
      sampler.#post('Profiler.setSamplingInterval', { interval: SAMPLING_INTERVAL_US });
      sampler.#post('Profiler.start');
      return sampler;
    } catch {
      return undefined;
    }
  }

  /** The samples since the start or the previous take; sampling goes on. */
  take(): StackSamples {
    let profile: SampledProfile | undefined;
    this.#post('Profiler.stop', undefined, (result) => (profile = (result as { profile: SampledProfile }).profile));
    this.#post('Profiler.start');
    return profile ? countSamples(profile) : { total: 0, functions: [] };
  }

  stop(): void {
    try {
      this.#session.disconnect();
    } catch {
      // Already gone with the process.
    }
  }

  #post(method: string, params?: object, done?: (result: unknown) => void): void {
    this.#session.post(method, params, (err, result) => {
      if (!err) done?.(result);
    });
  }
}

/**
 * Counts each sample against the function it landed in. Functions are told
 * apart by where they are defined, so two methods both called `receive`
 * stay two entries; each is named with its file (`nacl-runtime.js` for the
 * runtime, `nacl-generated.js` for the code compiled from the config).
 */
export function countSamples(profile: SampledProfile): StackSamples {
  const byNode = new Map(profile.nodes.map((n) => [n.id, n.callFrame]));
  const counts = new Map<string, { name: string; count: number }>();
  let total = 0;
  for (const id of profile.samples ?? []) {
    const frame = byNode.get(id);
    if (!frame) continue;
    total++;
    const key = `${frame.functionName}\0${frame.url}\0${frame.lineNumber}\0${frame.columnNumber}`;
    const entry = counts.get(key);
    if (entry) entry.count++;
    else counts.set(key, { name: symbol(frame.functionName, frame.url), count: 1 });
  }
  return { total, functions: [...counts.values()].sort((a, b) => b.count - a.count || a.name.localeCompare(b.name)) };
}

function symbol(functionName: string, url: string): string {
  // No name and no script: a function of the engine or of a native addon
  // (the TAP driver's sends, with the system calls they make).
  if (functionName === '' && url === '') return '(native code)';
  const name = functionName === '' ? '(anonymous)' : functionName;
  const file = url.slice(url.lastIndexOf('/') + 1);
  return file === '' ? name : `${name} (${file})`;
}
