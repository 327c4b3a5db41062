import { spawnSync } from 'node:child_process';

/** Whether a command-line tool is installed. */
export function hasTool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).status === 0;
}

/**
 * For tests that need a real tool (dot, tshark, ip): locally a missing tool
 * skips the test and says so loudly; in CI (CI=true) it is a failure.
 */
export function requireTool(name: string): boolean {
  if (hasTool(name)) return true;
  if (process.env['CI'] === 'true') throw new Error(`${name} is required in CI but is not installed (.ci/run installs it)`);
  console.warn(`\n*** SKIPPED: ${name} is not installed; install it to run this test ***\n`);
  return false;
}
