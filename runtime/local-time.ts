/*
 * Local-time texts the appliance prints, in the host's time zone: the
 * Timer `timestamp` item (upstream's strftime `%c` in the C locale) and the
 * RFC 3164 syslog timestamp.
 */

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'] as const;
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'] as const;

const two = (n: number) => String(n).padStart(2, '0');
const clock = (t: Date) => `${two(t.getHours())}:${two(t.getMinutes())}:${two(t.getSeconds())}`;

/** `Fri Nov 27 09:05:03 2026`: strftime `%c` in the C locale (`%a %b %e %H:%M:%S %Y`). */
export function cTimeText(wallTime: number): string {
  const t = new Date(wallTime);
  return `${DAYS[t.getDay()]} ${MONTHS[t.getMonth()]} ${String(t.getDate()).padStart(2, ' ')} ${clock(t)} ${t.getFullYear()}`;
}

/** `Nov  7 09:05:03`: RFC 3164 4.1.2's TIMESTAMP (day space-padded, no year). */
export function bsdTimestamp(wallTime: number): string {
  const t = new Date(wallTime);
  return `${MONTHS[t.getMonth()]} ${String(t.getDate()).padStart(2, ' ')} ${clock(t)}`;
}
