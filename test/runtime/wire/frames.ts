/**
 * Frames as they appear on the wire, checksums as the sending stack computed
 * them. Each line is one header (or 16 bytes of one), labelled after `#`.
 */

import { parseIpv4Address } from '../../../runtime/wire/ipv4.ts';

/** Hex digits to bytes; whitespace and `#` comments to the end of a line are ignored. */
export function hex(text: string): Uint8Array {
  const digits = text.replace(/#[^\n]*/g, '').replace(/\s+/g, '');
  return Uint8Array.from(Buffer.from(digits, 'hex'));
}

/** A dotted quad as a number; tests only, so a typo fails loudly. */
export function ip(text: string): number {
  const addr = parseIpv4Address(text);
  if (addr === undefined) throw new Error(`not an IPv4 address: ${text}`);
  return addr;
}

/**
 * Frame 1 of Wireshark's sample capture http.cap: a Windows XP client
 * (145.254.160.237:3372, TTL 128) opening a connection to 65.208.228.223:80.
 * SYN with MSS 1460, NOP NOP SACK-permitted. Captured on the wire, not built.
 */
export const HTTP_CAP_SYN = hex(`
  feff 2000 0100 0000 0100 0000 0800      # ethernet
  4500 0030 0f41 4000 8006 91eb 91fe a0ed # ipv4
  41d0 e4df
  0d2c 0050 38af fe13 0000 0000 7002 2238 # tcp
  c30c 0000
  0204 05b4 0101 0402                     # tcp options
`);

/**
 * `ping -c1 10.0.2.2` from a Linux guest on QEMU user networking
 * (10.0.2.15, 52:54:00:12:34:56; the gateway is 52:55:0a:00:02:02): iputils
 * sets DF, TTL 64, and sends a 16-byte timeval followed by 0x10..0x37.
 */
export const PING_REQUEST = hex(`
  5255 0a00 0202 5254 0012 3456 0800      # ethernet
  4500 0054 4a1c 4000 4001 d87c 0a00 020f # ipv4
  0a00 0202
  0800 f5b4 0b5e 0001                     # icmp echo request
  a0d0 5566 0000 0000 40e2 0100 0000 0000 # data: timeval, then 0x10..0x37
  1011 1213 1415 1617 1819 1a1b 1c1d 1e1f
  2021 2223 2425 2627 2829 2a2b 2c2d 2e2f
  3031 3233 3435 3637
`);

/** Linux's answer to PING_REQUEST: same identifier, sequence and data, no DF. */
export const PING_REPLY = hex(`
  5254 0012 3456 5255 0a00 0202 0800      # ethernet
  4500 0054 1d2e 0000 4001 456b 0a00 0202 # ipv4
  0a00 020f
  0000 fdb4 0b5e 0001                     # icmp echo reply
  a0d0 5566 0000 0000 40e2 0100 0000 0000 # data
  1011 1213 1415 1617 1819 1a1b 1c1d 1e1f
  2021 2223 2425 2627 2829 2a2b 2c2d 2e2f
  3031 3233 3435 3637
`);

/**
 * `dig example.com` (RD and AD set, EDNS0 with a 1232-byte buffer) sent
 * from an unconnected socket: DF set, IP identifier 0 (Linux's ip_select_ident).
 */
export const DNS_QUERY = hex(`
  5255 0a00 0202 5254 0012 3456 0800      # ethernet
  4500 0044 0000 4000 4011 2298 0a00 020f # ipv4
  0a00 0203
  a112 0035 0030 5282                     # udp
  1f2b 0120 0001 0000 0000 0001 0765 7861 # dns
  6d70 6c65 0363 6f6d 0000 0100 0100 0029
  04d0 0000 0000 0000
`);

/**
 * 10.0.2.3 with nothing on port 53 answering DNS_QUERY: Linux sends TOS
 * 0xc0 and quotes the whole offending datagram (it fits in 576 bytes).
 */
export const PORT_UNREACHABLE = hex(`
  5254 0012 3456 5255 0a00 0202 0800      # ethernet
  45c0 0060 6f01 0000 4001 f2ca 0a00 0203 # ipv4
  0a00 020f
  0303 1550 0000 0000                     # icmp port unreachable
  4500 0044 0000 4000 4011 2298 0a00 020f # quoted ipv4
  0a00 0203
  a112 0035 0030 5282                     # quoted udp
  1f2b 0120 0001 0000 0000 0001 0765 7861 # quoted dns
  6d70 6c65 0363 6f6d 0000 0100 0100 0029
  04d0 0000 0000 0000
`);

/**
 * The gateway answering a `traceroute 8.8.8.8` probe sent with TTL 1
 * (UDP to 33434, 32 bytes of 0x40..0x5f), quoting the whole probe.
 */
export const TIME_EXCEEDED = hex(`
  5254 0012 3456 5255 0a00 0202 0800      # ethernet
  45c0 0058 2b10 0000 4001 36c5 0a00 0202 # ipv4
  0a00 020f
  0b00 1158 0000 0000                     # icmp time exceeded
  4500 003c 7c3a 0000 0111 2159 0a00 020f # quoted ipv4
  0808 0808
  ad21 829a 0028 bebe                     # quoted udp
  4041 4243 4445 4647 4849 4a4b 4c4d 4e4f # quoted probe data
  5051 5253 5455 5657 5859 5a5b 5c5d 5e5f
`);

/**
 * A router with a 1400-byte next hop refusing a 1500-byte DF segment:
 * type 3 code 4 with the RFC 1191 MTU, quoting the IP header and 8 bytes.
 */
export const FRAG_NEEDED = hex(`
  5254 0012 3456 5255 0a00 0202 0800      # ethernet
  45c0 0038 2b11 0000 4001 36e4 0a00 0202 # ipv4
  0a00 020f
  0304 3f29 0000 0578                     # icmp fragmentation needed, mtu 1400
  4500 05dc 5d21 4000 4006 9611 0a00 020f # quoted ipv4
  5db8 d822
  b26e 0050 3b9a ca01                     # quoted tcp, first 8 bytes
`);

/**
 * A Linux SYN to 93.184.216.34:80: window 64240 and the option layout of
 * tcp_options_write - MSS 1460, SACK-permitted, timestamps, NOP, window scale 7.
 */
export const LINUX_SYN = hex(`
  5255 0a00 0202 5254 0012 3456 0800      # ethernet
  4500 003c c8a1 4000 4006 3031 0a00 020f # ipv4
  5db8 d822
  b26e 0050 3b9a ca00 0000 0000 a002 faf0 # tcp
  9968 0000
  0204 05b4 0402 080a 9a3c 1f27 0000 0000 # tcp options
  0103 0307
`);

/**
 * The Linux server's SYN-ACK to LINUX_SYN, 8 hops away (TTL 56), window
 * scale 9, echoing the client's timestamp; IP identifier 0 as Linux sends on DF SYN-ACKs.
 */
export const LINUX_SYNACK = hex(`
  5254 0012 3456 5255 0a00 0202 0800      # ethernet
  4500 003c 0000 4000 3806 00d3 5db8 d822 # ipv4
  0a00 020f
  0050 b26e 5eed 0000 3b9a ca01 a012 fe88 # tcp
  f269 0000
  0204 05b4 0402 080a 1122 3344 9a3c 1f27 # tcp options
  0103 0309
`);

/**
 * Linux asking who has 10.0.2.2: broadcast, target MAC zero, not padded
 * (captured on the sending host, before the NIC pads to 60 bytes).
 */
export const ARP_REQUEST = hex(`
  ffff ffff ffff 5254 0012 3456 0806      # ethernet
  0001 0800 0604 0001 5254 0012 3456 0a00 # arp
  020f 0000 0000 0000 0a00 0202
`);

/** QEMU's gateway answering ARP_REQUEST, as received: padded to 60 bytes. */
export const ARP_REPLY = hex(`
  5254 0012 3456 5255 0a00 0202 0806      # ethernet
  0001 0800 0604 0002 5255 0a00 0202 0a00 # arp
  0202 5254 0012 3456 0a00 020f
  0000 0000 0000 0000 0000 0000 0000 0000 # padding
  0000
`);

/** ARP_REQUEST sent on VLAN 10 (an eth0.10 interface): TPID 0x8100, PCP 0. */
export const VLAN_ARP_REQUEST = hex(`
  ffff ffff ffff 5254 0012 3456 8100      # ethernet
  000a 0806                               # 802.1q
  0001 0800 0604 0001 5254 0012 3456 0a00 # arp
  020f 0000 0000 0000 0a00 0202
`);

/**
 * An IGMPv2 membership report for 224.0.0.251 (mDNS) from Linux: TTL 1,
 * TOS 0xc0 and the Router Alert option, so IHL is 6.
 */
export const IGMP_ROUTER_ALERT = hex(`
  0100 5e00 00fb 5254 0012 3456 0800      # ethernet
  46c0 0020 0000 4000 0102 f70d 0a00 020f # ipv4
  e000 00fb
  9404 0000                               # ipv4 option: router alert
  1600 0904 e000 00fb                     # igmpv2
`);

/** The IPv4 header worked through in Wikipedia's "Internet checksum" example (checksum 0xb861). */
export const WIKIPEDIA_IPV4_HEADER = hex('4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7');
