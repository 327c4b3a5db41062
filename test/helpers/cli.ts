import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT } from './examples.ts';

export interface CliResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the built `nacl` command as a user would. */
export function nacl(args: string[], options: { cwd?: string; env?: Record<string, string>; input?: string } = {}): CliResult {
  const result = spawnSync(process.execPath, [join(ROOT, 'dist', 'nacl.js'), ...args], {
    cwd: options.cwd ?? ROOT,
    env: { ...process.env, NO_COLOR: '1', ...options.env },
    input: options.input,
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}
