/**
 * DHCP messages (RFC 2131) with the options (RFC 2132) an IPv4 client on
 * Ethernet uses. A message is a BOOTP header, the magic cookie and a list
 * of options; `DhcpRepr.parse` validates every length it reads and returns
 * a reason instead of throwing, like every decoder here.
 */

import { MAC_LEN } from './ethernet.ts';
import { bytesAvailable, readU16, readU32, writeU16, writeU32 } from './field.ts';

const OP = 0;
const HTYPE = 1;
const HLEN = 2;
const XID = 4;
const SECS = 8;
const FLAGS = 10;
const CIADDR = 12;
const YIADDR = 16;
const SIADDR = 20;
const GIADDR = 24;
const CHADDR = 28;
const COOKIE = 236;
const OPTIONS = 240;
const MAGIC_COOKIE = 0x63825363;
const BROADCAST_FLAG = 0x8000;
/** BOOTP's minimum message (RFC 1542 2.1); some servers ignore shorter ones. */
const MIN_MESSAGE = 300;

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;

export const DhcpMessageType = {
  Discover: 1,
  Offer: 2,
  Request: 3,
  Decline: 4,
  Ack: 5,
  Nak: 6,
  Release: 7,
  Inform: 8,
} as const;

export const DhcpOption = {
  Pad: 0,
  SubnetMask: 1,
  Router: 3,
  DnsServer: 6,
  DomainName: 15,
  RequestedIp: 50,
  LeaseTime: 51,
  MessageType: 53,
  ServerId: 54,
  ParameterRequestList: 55,
  RenewalTime: 58,
  RebindingTime: 59,
  ClientId: 61,
  End: 255,
} as const;

export type DhcpError =
  | 'truncated'
  | 'bad-op'
  | 'bad-hardware-type'
  | 'bad-magic-cookie'
  | 'truncated-option'
  | 'bad-option-length'
  | 'no-message-type';

export interface DhcpRepr {
  /** 1 BOOTREQUEST (client to server), 2 BOOTREPLY. */
  op: 1 | 2;
  xid: number;
  secs: number;
  /** Ask the server to broadcast its replies (we have no address yet). */
  broadcast: boolean;
  ciaddr: number;
  yiaddr: number;
  siaddr: number;
  giaddr: number;
  /** The client's MAC. */
  chaddr: Uint8Array;
  /** Option 53. */
  messageType: number;
  subnetMask: number | null;
  routers: number[];
  dnsServers: number[];
  domainName: string | null;
  requestedIp: number | null;
  /** Seconds. */
  leaseTime: number | null;
  renewalTime: number | null;
  rebindingTime: number | null;
  serverId: number | null;
  clientId: Uint8Array | null;
  parameterRequestList: number[];
}

/** A request with every optional field empty, for building messages. */
export function dhcpRequestRepr(messageType: number, xid: number, chaddr: Uint8Array): DhcpRepr {
  return {
    op: 1,
    xid,
    secs: 0,
    broadcast: false,
    ciaddr: 0,
    yiaddr: 0,
    siaddr: 0,
    giaddr: 0,
    chaddr,
    messageType,
    subnetMask: null,
    routers: [],
    dnsServers: [],
    domainName: null,
    requestedIp: null,
    leaseTime: null,
    renewalTime: null,
    rebindingTime: null,
    serverId: null,
    clientId: null,
    parameterRequestList: [],
  };
}

function addresses(bytes: Uint8Array, at: number, len: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < len; i += 4) out.push(readU32(bytes, at + i));
  return out;
}

/** Options whose length is fixed or a multiple of 4; a message breaking these is malformed. */
function lengthOk(code: number, len: number): boolean {
  switch (code) {
    case DhcpOption.MessageType:
      return len === 1;
    case DhcpOption.SubnetMask:
    case DhcpOption.RequestedIp:
    case DhcpOption.LeaseTime:
    case DhcpOption.ServerId:
    case DhcpOption.RenewalTime:
    case DhcpOption.RebindingTime:
      return len === 4;
    case DhcpOption.Router:
    case DhcpOption.DnsServer:
      return len >= 4 && len % 4 === 0;
    default:
      return true;
  }
}

export const DhcpRepr = {
  parse(bytes: Uint8Array, offset = 0, end = bytes.length): DhcpRepr | DhcpError {
    const available = bytesAvailable(bytes, offset, end);
    if (available < OPTIONS) return 'truncated';
    const op = bytes[offset + OP]!;
    if (op !== 1 && op !== 2) return 'bad-op';
    if (bytes[offset + HTYPE] !== 1 || bytes[offset + HLEN] !== MAC_LEN) return 'bad-hardware-type';
    if (readU32(bytes, offset + COOKIE) !== MAGIC_COOKIE) return 'bad-magic-cookie';
    const repr = dhcpRequestRepr(0, readU32(bytes, offset + XID), bytes.slice(offset + CHADDR, offset + CHADDR + MAC_LEN));
    repr.op = op;
    repr.secs = readU16(bytes, offset + SECS);
    repr.broadcast = (readU16(bytes, offset + FLAGS) & BROADCAST_FLAG) !== 0;
    repr.ciaddr = readU32(bytes, offset + CIADDR);
    repr.yiaddr = readU32(bytes, offset + YIADDR);
    repr.siaddr = readU32(bytes, offset + SIADDR);
    repr.giaddr = readU32(bytes, offset + GIADDR);
    const stop = offset + available;
    let at = offset + OPTIONS;
    while (at < stop) {
      const code = bytes[at]!;
      if (code === DhcpOption.End) break;
      if (code === DhcpOption.Pad) {
        at++;
        continue;
      }
      if (at + 2 > stop || at + 2 + bytes[at + 1]! > stop) return 'truncated-option';
      const len = bytes[at + 1]!;
      const data = at + 2;
      if (!lengthOk(code, len)) return 'bad-option-length';
      switch (code) {
        case DhcpOption.MessageType:
          repr.messageType = bytes[data]!;
          break;
        case DhcpOption.SubnetMask:
          repr.subnetMask = readU32(bytes, data);
          break;
        case DhcpOption.Router:
          repr.routers = addresses(bytes, data, len);
          break;
        case DhcpOption.DnsServer:
          repr.dnsServers = addresses(bytes, data, len);
          break;
        case DhcpOption.DomainName:
          repr.domainName = String.fromCharCode(...bytes.subarray(data, data + len)).replace(/\0+$/, '');
          break;
        case DhcpOption.RequestedIp:
          repr.requestedIp = readU32(bytes, data);
          break;
        case DhcpOption.LeaseTime:
          repr.leaseTime = readU32(bytes, data);
          break;
        case DhcpOption.RenewalTime:
          repr.renewalTime = readU32(bytes, data);
          break;
        case DhcpOption.RebindingTime:
          repr.rebindingTime = readU32(bytes, data);
          break;
        case DhcpOption.ServerId:
          repr.serverId = readU32(bytes, data);
          break;
        case DhcpOption.ClientId:
          repr.clientId = bytes.slice(data, data + len);
          break;
        case DhcpOption.ParameterRequestList:
          repr.parameterRequestList = [...bytes.subarray(data, data + len)];
          break;
      }
      at = data + len;
    }
    if (repr.messageType === 0) return 'no-message-type';
    return repr;
  },

  /** The message's bytes (at least 300, zero padded). */
  emit(r: DhcpRepr): Uint8Array {
    const options: number[] = [DhcpOption.MessageType, 1, r.messageType];
    const u32 = (code: number, value: number | null) => {
      if (value !== null) options.push(code, 4, value >>> 24, (value >>> 16) & 255, (value >>> 8) & 255, value & 255);
    };
    const list = (code: number, values: readonly number[]) => {
      if (values.length === 0) return;
      options.push(code, values.length * 4);
      for (const v of values) options.push(v >>> 24, (v >>> 16) & 255, (v >>> 8) & 255, v & 255);
    };
    if (r.clientId) options.push(DhcpOption.ClientId, r.clientId.length, ...r.clientId);
    u32(DhcpOption.RequestedIp, r.requestedIp);
    u32(DhcpOption.ServerId, r.serverId);
    u32(DhcpOption.SubnetMask, r.subnetMask);
    list(DhcpOption.Router, r.routers);
    list(DhcpOption.DnsServer, r.dnsServers);
    u32(DhcpOption.LeaseTime, r.leaseTime);
    u32(DhcpOption.RenewalTime, r.renewalTime);
    u32(DhcpOption.RebindingTime, r.rebindingTime);
    if (r.domainName !== null) {
      const name = [...r.domainName].map((c) => c.charCodeAt(0) & 255).slice(0, 255);
      options.push(DhcpOption.DomainName, name.length, ...name);
    }
    if (r.parameterRequestList.length > 0) options.push(DhcpOption.ParameterRequestList, r.parameterRequestList.length, ...r.parameterRequestList);
    options.push(DhcpOption.End);
    const b = new Uint8Array(Math.max(MIN_MESSAGE, OPTIONS + options.length));
    b[OP] = r.op;
    b[HTYPE] = 1;
    b[HLEN] = MAC_LEN;
    writeU32(b, XID, r.xid);
    writeU16(b, SECS, r.secs);
    writeU16(b, FLAGS, r.broadcast ? BROADCAST_FLAG : 0);
    writeU32(b, CIADDR, r.ciaddr);
    writeU32(b, YIADDR, r.yiaddr);
    writeU32(b, SIADDR, r.siaddr);
    writeU32(b, GIADDR, r.giaddr);
    b.set(r.chaddr.subarray(0, MAC_LEN), CHADDR);
    writeU32(b, COOKIE, MAGIC_COOKIE);
    b.set(options, OPTIONS);
    return b;
  },
};
