import type { IrField } from '../ir.ts';

/*
 * How generated code reads each packet field from the buffer `b` with the IP
 * header at `o` and the L4 header at `l` (nacl-language.md Appendix A). Every
 * field is its numeric value as transmitted, big-endian decoded (10.4 row 38);
 * `tcp.reserved` is the 4 low bits of byte 12 (10.4 row 37).
 */
const u16 = (at: string) => `((b[${at}] << 8) | b[${at} + 1])`;
const u32 = (at: string) => `(((b[${at}] << 24) | (b[${at} + 1] << 16) | (b[${at} + 2] << 8) | b[${at} + 3]) >>> 0)`;

export const FIELD_READ: Readonly<Record<IrField, string>> = {
  'ip.version': '(b[o] >> 4)',
  'ip.hdrlength': '((b[o] & 15) << 2)',
  'ip.dscp': '(b[o + 1] >> 2)',
  'ip.ecn': '(b[o + 1] & 3)',
  'ip.length': u16('o + 2'),
  'ip.id': u16('o + 4'),
  'ip.frag-off': '(((b[o + 6] & 31) << 8) | b[o + 7])',
  'ip.ttl': 'b[o + 8]',
  'ip.protocol': 'b[o + 9]',
  'ip.checksum': u16('o + 10'),
  'ip.saddr': u32('o + 12'),
  'ip.daddr': u32('o + 16'),
  'tcp.sport': u16('l'),
  'tcp.dport': u16('l + 2'),
  'tcp.sequence': u32('l + 4'),
  'tcp.ackseq': u32('l + 8'),
  'tcp.doff': '(b[l + 12] >> 4)',
  'tcp.reserved': '(b[l + 12] & 15)',
  'tcp.flags': 'b[l + 13]',
  'tcp.window': u16('l + 14'),
  'tcp.checksum': u16('l + 16'),
  'tcp.urgptr': u16('l + 18'),
  'udp.sport': u16('l'),
  'udp.dport': u16('l + 2'),
  'udp.length': u16('l + 4'),
  'udp.checksum': u16('l + 6'),
  'icmp.type': 'b[l]',
  'ct.state': 'ctState(ct)',
};

/** A JS identifier for a field's hoisted local. */
export function fieldVar(field: IrField): string {
  return 'f_' + field.replace(/[.-]/g, '_');
}

/** Fields whose value is an address, printed as a dotted quad by log(). */
export const ADDRESS_FIELDS: ReadonlySet<IrField> = new Set(['ip.saddr', 'ip.daddr']);
