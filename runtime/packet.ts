/**
 * The per-packet view every runtime module shares.
 *
 * A `Packet` is four offsets into one `Uint8Array`; the header fields are
 * read and written in place with the `runtime/wire` views, never copied.
 * Packets live in the receive buffers of the driver that delivered them
 * (frames are the driver's for the duration of the receive call, nic.ts),
 * and a forwarded frame goes back out in the same buffer. The stack keeps one
 * `Packet` object and refills it with `loadFrame` / `loadDatagram`, so the
 * steady-state path allocates nothing: the buffers the architecture's
 * "pooled packet buffers" rule asks for are the NIC's own, as in a ring.
 */

import { ETHERNET_HEADER_LEN, EtherType, ethEtherType } from './wire/ethernet.ts';
import { bytesAvailable } from './wire/field.ts';
import { checkIpv4, ipv4HeaderLen, ipv4TotalLen, type Ipv4Error } from './wire/ipv4.ts';
import { isVlanTpid, VLAN_HEADER_LEN, vlanEtherType } from './wire/vlan.ts';

/** How conntrack classified the packet (`Conntrack.track` writes it; Linux keeps the same in `skb->_nfct`). */
export const CtInfo = {
  /** Not tracked: no entry, or not looked at yet. */
  None: -1,
  /** Travels in the direction of the flow's first packet. */
  Original: 0,
  /** Travels the other way. */
  Reply: 1,
  /** Bit set on an ICMP error that quotes a packet of the flow (RELATED); the low bit is still the direction. */
  Related: 2,
} as const;

export interface Packet {
  /** The frame (or datagram) buffer; may be longer than the packet. */
  bytes: Uint8Array;
  /** Offset of the IPv4 header. */
  l3: number;
  /** Offset of the transport header (l3 + IHL * 4). */
  l4: number;
  /** End of the IP datagram (l3 + total length): link padding after it is not the packet's. */
  end: number;
  /** A `CtInfo` value: direction, plus the Related bit; `CtInfo.None` until tracked. */
  ctInfo: number;
}

/**
 * 'not-ipv4': an EtherType other than IPv4 (ARP, IPv6, ...): not an error of
 * the frame, just not ours. 'stacked-tag': Q-in-Q, dropped and counted by
 * project decision (runtime-semantics.md 14).
 */
export type PacketError = Ipv4Error | 'not-ipv4' | 'stacked-tag';

/** An empty view, to be filled by `loadFrame` / `loadDatagram`. */
export function newPacket(): Packet {
  return { bytes: new Uint8Array(0), l3: 0, l4: 0, end: 0, ctInfo: CtInfo.None };
}

/**
 * Points `pkt` at the IPv4 datagram that starts at `l3` of `bytes` (up to
 * `length` bytes of the buffer are valid). Checks the header once, checksum
 * included unless `verifyChecksum` is false (upstream `drop_invalid_in`,
 * runtime-semantics.md 1.2 step 2), and trims link padding by taking `end`
 * from the total length. Leaves `pkt` unusable and returns the reason on bad
 * bytes.
 */
export function loadDatagram(
  pkt: Packet,
  bytes: Uint8Array,
  l3 = 0,
  length = bytes.length,
  verifyChecksum = true,
): PacketError | undefined {
  pkt.bytes = bytes;
  pkt.ctInfo = CtInfo.None;
  const error = checkIpv4(bytes, l3, length, verifyChecksum);
  if (error) {
    pkt.l3 = pkt.l4 = pkt.end = 0;
    return error;
  }
  pkt.l3 = l3;
  pkt.l4 = l3 + ipv4HeaderLen(bytes, l3);
  pkt.end = l3 + ipv4TotalLen(bytes, l3);
  return undefined;
}

/**
 * Points `pkt` at the IPv4 datagram inside an Ethernet frame, skipping one
 * 802.1Q tag if there is one (the VLAN itself is the caller's business:
 * runtime-semantics.md 5).
 */
export function loadFrame(pkt: Packet, frame: Uint8Array, length = frame.length, verifyChecksum = true): PacketError | undefined {
  pkt.bytes = frame;
  pkt.ctInfo = CtInfo.None;
  const l3 = frameIpv4Offset(frame, length);
  if (typeof l3 === 'string') {
    pkt.l3 = pkt.l4 = pkt.end = 0;
    return l3;
  }
  return loadDatagram(pkt, frame, l3, length, verifyChecksum);
}

/** Where the IPv4 header of a frame starts, or why the frame has none. */
export function frameIpv4Offset(frame: Uint8Array, length = frame.length): number | PacketError {
  if (bytesAvailable(frame, 0, length) < ETHERNET_HEADER_LEN) return 'truncated';
  let etherType = ethEtherType(frame, 0);
  let l3 = ETHERNET_HEADER_LEN;
  if (etherType === EtherType.Vlan) {
    if (bytesAvailable(frame, l3, length) < VLAN_HEADER_LEN) return 'truncated';
    etherType = vlanEtherType(frame, l3);
    l3 += VLAN_HEADER_LEN;
    if (isVlanTpid(etherType)) return 'stacked-tag';
  }
  return etherType === EtherType.Ipv4 ? l3 : 'not-ipv4';
}

/** A fresh `Packet` over a frame, for control paths and tests (allocates the view object). */
export function packetFromFrame(frame: Uint8Array, length = frame.length, verifyChecksum = true): Packet | PacketError {
  const pkt = newPacket();
  return loadFrame(pkt, frame, length, verifyChecksum) ?? pkt;
}

/** A fresh `Packet` over a bare IPv4 datagram at `l3`. */
export function packetFromDatagram(bytes: Uint8Array, l3 = 0, verifyChecksum = true): Packet | PacketError {
  const pkt = newPacket();
  return loadDatagram(pkt, bytes, l3, bytes.length, verifyChecksum) ?? pkt;
}
