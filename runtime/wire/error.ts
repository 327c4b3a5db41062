/**
 * Every reason a wire decoder can reject bytes, in one place so that drop
 * counters can be keyed by it. Decoders return these strings as values and
 * never throw: bad packets are an everyday input, not a bug.
 */

import type { ArpError } from './arp.ts';
import type { DhcpError } from './dhcp.ts';
import type { EthernetError } from './ethernet.ts';
import type { Icmpv4Error } from './icmpv4.ts';
import type { Ipv4Error } from './ipv4.ts';
import type { TcpError } from './tcp.ts';
import type { TcpOptionError } from './tcp-options.ts';
import type { UdpError } from './udp.ts';
import type { VlanError } from './vlan.ts';

export type WireError =
  | EthernetError
  | VlanError
  | ArpError
  | Ipv4Error
  | Icmpv4Error
  | UdpError
  | TcpError
  | TcpOptionError
  | DhcpError;

/**
 * Returned by `emit`, which then leaves the buffer untouched:
 * 'buffer-too-small' - the target cannot hold what would be written;
 * 'field-out-of-range' - the repr cannot be encoded (IPv4 options over 40
 * bytes, a datagram over 65535 bytes, ...).
 */
export type EmitError = 'buffer-too-small' | 'field-out-of-range';

/** Decoders return either a value or a reason code; a string is always the code. */
export function isWireError<T extends object>(result: T | WireError): result is WireError {
  return typeof result === 'string';
}
