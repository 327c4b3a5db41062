/*
 * What a `syslog(...)` action sends (runtime-semantics.md 8.1 and 14): the
 * PRI is the RFC 5424 value, facility * 8 + severity (upstream multiplied an
 * already shifted facility, giving 64 + severity); the facility is `user`
 * unless the operator sets another at boot; the framing is RFC 5424, or the
 * BSD framing of RFC 3164 for older collectors.
 */

import { bsdTimestamp } from './local-time.ts';

export type SyslogFraming = 'rfc5424' | 'rfc3164';

export interface SyslogSettings {
  /** 0-23 (RFC 5424 table 1). */
  readonly facility: number;
  readonly framing: SyslogFraming;
}

export const DEFAULT_SYSLOG: SyslogSettings = { facility: 1, framing: 'rfc5424' };

/** Names as syslog.conf and logger(1) spell them, by facility number. */
export const FACILITY_NAMES = [
  'kern', 'user', 'mail', 'daemon', 'auth', 'syslog', 'lpr', 'news', 'uucp', 'cron', 'authpriv', 'ftp',
  'ntp', 'security', 'console', 'solaris-cron', 'local0', 'local1', 'local2', 'local3', 'local4', 'local5', 'local6', 'local7',
] as const;

const SEVERITY_NAMES = ['EMERG', 'ALERT', 'CRIT', 'ERR', 'WARNING', 'NOTICE', 'INFO', 'DEBUG'] as const;

/** A facility by name or number, or null when it is neither. */
export function parseFacility(text: string): number | null {
  const lower = text.trim().toLowerCase();
  if (/^\d{1,2}$/.test(lower)) {
    const n = Number(lower);
    return n <= 23 ? n : null;
  }
  const index = (FACILITY_NAMES as readonly string[]).indexOf(lower);
  return index < 0 ? null : index;
}

export function syslogPri(facility: number, severity: number): number {
  return facility * 8 + (severity & 7);
}

/**
 * One datagram's text. RFC 5424: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD MSG`
 * with upstream's fields (app `nacl`, pid 1, MSGID `UDPOUT`, no structured
 * data), but a true UTC time. RFC 3164: `<PRI>Mmm dd hh:mm:ss HOST TAG: MSG`,
 * local time as that RFC has it.
 */
export function syslogDatagramText(settings: SyslogSettings, severity: number, wallTime: number, host: string, text: string): string {
  const pri = syslogPri(settings.facility, severity);
  if (settings.framing === 'rfc3164') return `<${pri}>${bsdTimestamp(wallTime)} ${host} nacl[1]: ${text}`;
  return `<${pri}>1 ${new Date(wallTime).toISOString()} ${host} nacl 1 UDPOUT - ${text}`;
}

/** The console line when no Syslog element names a server: `<PRI> FACILITY.SEVERITY TIMESTAMP nacl: MSG`. */
export function syslogConsoleLine(settings: SyslogSettings, severity: number, wallTime: number, text: string): string {
  const facility = FACILITY_NAMES[settings.facility]!.toUpperCase();
  return `<${syslogPri(settings.facility, severity)}> ${facility}.${SEVERITY_NAMES[severity & 7]} ${new Date(wallTime).toISOString()} nacl: ${text}`;
}
