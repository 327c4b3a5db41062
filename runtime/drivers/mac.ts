import { randomBytes } from 'node:crypto';

/**
 * A random locally administered unicast MAC: bit 1 of the first byte set
 * (locally administered, so it cannot collide with a vendor's OUI), bit 0
 * clear (unicast). IEEE 802-2014 section 8.2.2.
 */
export function randomMac(): Uint8Array {
  const mac = new Uint8Array(randomBytes(6));
  mac[0] = (mac[0]! & 0xfc) | 0x02;
  return mac;
}

/** Checks a MAC handed to a driver and returns a private copy of it. */
export function ownMac(mac: Uint8Array | undefined): Uint8Array {
  if (mac === undefined) return randomMac();
  if (mac.length !== 6) throw new RangeError(`a MAC address is 6 bytes, got ${mac.length}`);
  return Uint8Array.from(mac);
}

/** `02:00:5e:10:00:01`, for messages and tests. */
export function formatMac(mac: Uint8Array): string {
  return Array.from(mac, (b) => b.toString(16).padStart(2, '0')).join(':');
}
