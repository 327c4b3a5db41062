import { icmpv4ChecksumIsValid } from './icmpv4.ts';
import { IpProtocol, ipv4Dst, ipv4Protocol, ipv4Src } from './ipv4.ts';
import { tcpChecksumIsValid } from './tcp.ts';
import { udpChecksumIsValid } from './udp.ts';

/**
 * Is the transport checksum of the datagram at `l3` right, over the payload
 * `[l4, end)`? TCP and UDP include the pseudo-header; protocols without a
 * checksum we know pass.
 */
export function l4ChecksumValid(bytes: Uint8Array, l3: number, l4: number, end: number): boolean {
  const src = ipv4Src(bytes, l3);
  const dst = ipv4Dst(bytes, l3);
  switch (ipv4Protocol(bytes, l3)) {
    case IpProtocol.Tcp:
      return tcpChecksumIsValid(bytes, l4, end - l4, src, dst);
    case IpProtocol.Udp:
      return udpChecksumIsValid(bytes, l4, src, dst);
    case IpProtocol.Icmp:
      return icmpv4ChecksumIsValid(bytes, l4, end);
    default:
      return true;
  }
}
