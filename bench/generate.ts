/**
 * A generated ACL-style config for benchmarks: `rules` independent rules on
 * one Iface, each matching a source network, a protocol and a destination
 * port set - the shape of a real firewall policy.
 */
export function aclConfig(rules: number): string {
  const lines = [
    'Iface eth0 {',
    '    index: 0,',
    '    address: 10.0.0.1,',
    '    netmask: 255.255.255.0,',
    '    prerouting: acl',
    '}',
    '',
    'Filter::IP acl {',
    '    if (ct.state == established) {',
    '        accept',
    '    }',
    '    acl_tcp',
    '    acl_udp',
    '    drop',
    '}',
    '',
  ];
  const tcp: string[] = ['Filter::TCP acl_tcp {'];
  const udp: string[] = ['Filter::UDP acl_udp {'];
  for (let i = 0; i < rules; i++) {
    const net = `10.${(i >> 8) & 255}.${i & 255}.0/24`;
    const ports = `[${1000 + (i % 50000)}, ${2000 + (i % 1000)}-${2100 + (i % 1000)}]`;
    const verdict = i % 7 === 0 ? 'drop' : 'accept';
    const target = i % 3 === 0 ? udp : tcp;
    const proto = i % 3 === 0 ? 'udp' : 'tcp';
    target.push(`    if (ip.saddr in ${net} and ${proto}.dport in ${ports}) {`, `        ${verdict}`, '    }');
  }
  tcp.push('}', '');
  udp.push('}', '');
  return [...lines, ...tcp, ...udp].join('\n');
}
