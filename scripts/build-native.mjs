// npm's install step: builds the TAP driver's native addon (binding.gyp ->
// build/Release/nacl_tap.node). Only `tap:` NICs need it and tap.ts loads it
// lazily, so where it cannot be built (no compiler, not Linux) every other
// command still works: the failure is a loud warning. Under CI=true it fails
// the install instead, because the real-network tests need the driver.
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';

if (process.platform !== 'linux') {
  console.warn(`nacl: not building the TAP driver's addon: TAP devices are Linux only (this is ${process.platform})`);
  process.exit(0);
}
// npm sets npm_config_node_gyp to its bundled node-gyp for lifecycle scripts.
const gyp = process.env.npm_config_node_gyp;
const [command, args] = gyp ? [process.execPath, [gyp, 'rebuild']] : ['node-gyp', ['rebuild']];
const result = spawnSync(command, args, { cwd: join(import.meta.dirname, '..'), stdio: 'inherit' });
if (result.status === 0) process.exit(0);

const why = result.error ? result.error.message : `node-gyp exited with status ${result.status}`;
console.warn(
  `\nnacl: could not build the TAP driver's native addon (${why}).\n` +
    `  tap: NICs are unavailable; everything else works. The addon needs python3, make and a C\n` +
    `  compiler; install them and run \`npm run build:native\`.\n`,
);
process.exit(process.env.CI === 'true' ? 1 : 0);
