import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { describe, it } from 'vitest';

// Capability bits (linux/capability.h): creating TAP devices and network
// namespaces needs CAP_NET_ADMIN; `ip netns` mounts, which needs CAP_SYS_ADMIN.
const CAP_NET_ADMIN = 12n;
const CAP_SYS_ADMIN = 21n;

/** What this machine lacks to run real-network tests, or undefined if nothing. */
export function missingForRealNetwork(): string | undefined {
  if (process.platform !== 'linux') return 'Linux';
  const capEff = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'));
  const caps = capEff ? BigInt(`0x${capEff[1]}`) : 0n;
  if (((caps >> CAP_NET_ADMIN) & 1n) === 0n || ((caps >> CAP_SYS_ADMIN) & 1n) === 0n) return 'root (CAP_NET_ADMIN and CAP_SYS_ADMIN)';
  if (!existsSync('/dev/net/tun')) return '/dev/net/tun';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return 'the ip command (iproute2)';
  }
  return undefined;
}

/**
 * `describe` for tests that need root and a real kernel. Without them it
 * skips loudly on a developer's machine, but fails under CI=true, where a
 * silent skip would hide that the real-network tests never ran.
 */
export function describeRealNetwork(title: string, body: () => void): void {
  const missing = missingForRealNetwork();
  if (missing === undefined) {
    describe(title, body);
  } else if (process.env.CI === 'true') {
    describe(title, () => {
      it('runs, because CI=true requires real-network tests', () => {
        throw new Error(`${title}: this machine lacks ${missing}; real-network tests must run in CI`);
      });
    });
  } else {
    console.warn(`\n*** SKIPPING "${title}": needs ${missing}. Run the tests as root to include them. ***\n`);
    describe.skip(title, body);
  }
}

/** Runs `ip ARGS...`; throws with ip's own message on failure. */
export function ip(...args: string[]): string {
  return execFileSync('ip', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A network namespace of the test's own, so that nothing touches the host's network. */
export class Netns {
  readonly name = `nacl-test-${randomBytes(4).toString('hex')}`;

  constructor() {
    ip('netns', 'add', this.name);
    // No IPv6 inside: link-local autoconfiguration would add DAD, MLD and
    // router solicitation frames to every test's traffic. Absent when the
    // kernel runs without IPv6, which is just as good.
    this.sh('for f in all default; do echo 1 > /proc/sys/net/ipv6/conf/$f/disable_ipv6; done 2>/dev/null || true');
  }

  /** `ip -n NS ARGS...` */
  ip(...args: string[]): string {
    return ip('-n', this.name, ...args);
  }

  /** Runs a command inside the namespace. */
  exec(command: string, args: string[], timeout = 10_000): string {
    return execFileSync('ip', ['netns', 'exec', this.name, command, ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout,
    });
  }

  sh(script: string, timeout = 10_000): string {
    return this.exec('sh', ['-c', script], timeout);
  }

  /** Deletes the namespace and every device left in it. */
  delete(): void {
    ip('netns', 'delete', this.name);
  }
}

/** A device name nothing else uses: "nacl" and 8 hex digits, within Linux's 15 bytes. */
export function testIfname(): string {
  return `nacl${randomBytes(4).toString('hex')}`;
}
