import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import type { BenchResult } from '../appliances/bench.ts';

/*
 * Benchmarks that time each row in a process of its own (so a row does not
 * inherit call sites another row made megamorphic) run themselves again with
 * `--row ARGS...`; the child prints its BenchResult as JSON.
 */

const root = join(import.meta.dirname, '..');

/** The `--row` arguments this process was started with, or undefined in the parent. */
export function rowArgs(): string[] | undefined {
  return process.argv[2] === '--row' ? process.argv.slice(3) : undefined;
}

/** Runs `bench/SCRIPT --row ARGS...` in a child process and returns its result. */
export function runRow(script: string, args: readonly string[]): BenchResult {
  const child = spawnSync(process.execPath, [join(root, 'scripts', 'run-ts.mjs'), join(root, 'bench', script), '--row', ...args], { encoding: 'utf8', cwd: root });
  if (child.status !== 0) throw new Error(`bench row ${script} ${args.join(' ')} failed: ${child.stderr}`);
  return JSON.parse(child.stdout) as BenchResult;
}
