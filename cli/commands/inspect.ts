import { readImage, type LoadedImage } from '../../compiler/image.ts';
import { parseFormat, readBytes, UsageError } from '../io.ts';

/** `nacl inspect IMAGE [--format json]`. */
export function runInspect(file: string, options: { format: string }): number {
  const format = parseFormat(options.format, ['text', 'json'] as const);
  const loaded = readImage(readBytes(file));
  // Not an image nacl can read: an I/O error (2), as `nacl boot` says it.
  if (!loaded.ok) throw new UsageError(`${file}: ${loaded.message}`);
  const { manifest, sha256, size } = loaded.image;
  if (format === 'json') process.stdout.write(JSON.stringify({ file, size, sha256, manifest }, null, 2) + '\n');
  else process.stdout.write(renderSummary(loaded.image, file));
  return 0;
}

export function renderSummary(image: LoadedImage, file: string): string {
  const { manifest: m, size, sha256 } = image;
  const s = m.summary;
  const out = [
    `image ${file}: ${(size / 1024).toFixed(1)} KiB, sha256 ${sha256}`,
    `  built by nacl ${m.compilerVersion} (format ${m.formatVersion}) from ${m.source.file} (sha256 ${m.source.sha256.slice(0, 16)}...)`,
    `  content sha256 ${m.contentSha256}`,
    `  NICs needed: ${m.nics.map((n) => `${n.index ?? n.mac} (${n.ifaces.join(', ')})`).join('; ') || 'none'}`,
    '  interfaces:',
    ...s.ifaces.map((i) => {
      const chains = Object.entries(i.chains).filter(([, n]) => n > 0).map(([c, n]) => `${c} ${n}`).join(', ');
      return `    ${i.name.padEnd(12)} nic ${i.nic}${i.vlan !== null ? ` vlan ${i.vlan}` : ''}  ${i.address ?? i.config}${chains ? `  [${chains}]` : ''}`;
    }),
    `  functions: ${s.functions} attached, ${s.rules} rules`,
  ];
  if (s.gateway) out.push(`  gateway: ${s.gateway.routes} routes, ${s.gateway.forward} forward functions`);
  if (s.loadBalancer) out.push(`  load balancer: tcp port ${s.loadBalancer.port}, ${s.loadBalancer.algorithm}, pool ${s.loadBalancer.pool.join(' ')}`);
  out.push(`  conntrack: ${s.conntrack ? 'on' : 'off'}, nat: ${s.nat ? 'on' : 'off'}${s.syslog ? `, syslog to ${s.syslog}` : ''}${s.timers ? `, ${s.timers} timers` : ''}`);
  return out.join('\n') + '\n';
}
