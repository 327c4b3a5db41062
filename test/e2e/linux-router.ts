import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { HOST_A, HOST_B } from '../helpers/acl-model.ts';
import { Netns } from '../helpers/netns.ts';

/*
 * The Linux reference for the differential tests: three namespaces of the
 * test's own - host A, a router, host B - cabled with veth pairs and
 * addressed as helpers/acl-model.ts's routerConfig addresses the
 * appliance (A on a_side 10.91.1.0/24, B on b_side 10.91.2.0/24), with an
 * nftables ruleset on the router.
 */

export const ROUTER_A_SIDE = '10.91.1.1';
export const ROUTER_B_SIDE = '10.91.2.1';

export interface LinuxRouter {
  readonly a: Netns;
  readonly router: Netns;
  readonly b: Netns;
  delete(): void;
}

/** `routes`: extra routes on the router, as `ip route add` arguments. */
export function linuxRouter(ruleset: string, dir: string, routes: readonly string[][] = []): LinuxRouter {
  const [a, router, b] = [new Netns(), new Netns(), new Netns()];
  const made = { a, router, b, delete: () => [a, router, b].forEach((ns) => ns.delete()) };
  try {
    a.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'a_side', 'netns', router.name);
    b.ip('link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'b_side', 'netns', router.name);
    for (const [ns, dev, address] of [
      [a, 'eth0', `${HOST_A}/24`],
      [b, 'eth0', `${HOST_B}/24`],
      [router, 'a_side', `${ROUTER_A_SIDE}/24`],
      [router, 'b_side', `${ROUTER_B_SIDE}/24`],
    ] as const) {
      ns.ip('link', 'set', 'lo', 'up');
      ns.ip('addr', 'add', address, 'dev', dev);
      ns.ip('link', 'set', dev, 'up');
    }
    a.ip('route', 'add', 'default', 'via', ROUTER_A_SIDE);
    b.ip('route', 'add', 'default', 'via', ROUTER_B_SIDE);
    for (const route of routes) router.ip('route', 'add', ...route);
    // Sources from beyond A arrive where no route may point back: reverse-path filtering would drop them.
    router.sh('sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.a_side.rp_filter=0');
    writeFileSync(join(dir, 'router.nft'), ruleset);
    router.exec('nft', ['-f', join(dir, 'router.nft')]);
    return made;
  } catch (err) {
    made.delete();
    throw err;
  }
}
