import { execFileSync, spawn } from 'node:child_process';

/*
 * Network namespaces for the real-network benchmarks: each name carries a
 * per-run suffix, and every namespace made is deleted at the end, whatever
 * happened.
 */

export function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Runs a command inside a namespace. */
export function ns(name: string, ...args: string[]): string {
  return sh('ip', ['netns', 'exec', name, ...args]);
}

/** Whether `command` runs here (it answers `flag`, `-v` unless given, with its version). */
export function installed(command: string, flag = '-v'): boolean {
  try {
    sh(command, [flag]);
    return true;
  } catch {
    return false;
  }
}

/** Brings `dev` up inside namespace `name` with `addr` (CIDR), and a default route via `gateway` if given. */
export function configure(name: string, dev: string, addr: string, gateway?: string): void {
  ns(name, 'ip', 'link', 'set', dev, 'up');
  ns(name, 'ip', 'addr', 'add', addr, 'dev', dev);
  if (gateway) ns(name, 'ip', 'route', 'add', 'default', 'via', gateway);
}

/** Moves `dev` (a TAP device this process or the appliance opened) into namespace `name` and configures it there. */
export function moveInto(name: string, dev: string, addr: string, gateway?: string): void {
  sh('ip', ['link', 'set', dev, 'netns', name]);
  configure(name, dev, addr, gateway);
}

/**
 * Runs a command inside a namespace without blocking this process's event
 * loop (a bare TAP wire may be relaying frames in it); killed after
 * `timeoutMs`. Resolves with its output, rejects when it fails.
 */
export function nsAsync(name: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', name, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(Object.assign(new Error(`${args.join(' ')} failed (${code}): ${err || out}`), { stdout: out }));
    });
  });
}

export class BenchNamespaces {
  /** Part of every name this run makes (namespaces, devices), so runs never clash. */
  readonly suffix = Math.floor(Math.random() * 1e6).toString(16);
  private readonly made: string[] = [];

  /** A new namespace with its loopback up. */
  create(label: string): string {
    const name = `nacl-bench-${label}-${this.suffix}`;
    sh('ip', ['netns', 'add', name]);
    this.made.push(name);
    ns(name, 'ip', 'link', 'set', 'lo', 'up');
    return name;
  }

  deleteAll(): void {
    for (const n of this.made) {
      try {
        sh('ip', ['netns', 'delete', n]);
      } catch {
        // already gone
      }
    }
  }
}
