import { describe, expect, it } from 'vitest';
import { bsdTimestamp, cTimeText } from '../../runtime/local-time.ts';
import { DEFAULT_SYSLOG, parseFacility, syslogConsoleLine, syslogDatagramText, syslogPri } from '../../runtime/syslog-message.ts';

describe('syslog PRI', () => {
  it('is facility * 8 + severity (RFC 5424), not upstream 64 + severity', () => {
    expect(syslogPri(DEFAULT_SYSLOG.facility, 3)).toBe(11);
    expect(syslogPri(DEFAULT_SYSLOG.facility, 6)).toBe(14);
    expect(syslogPri(23, 7)).toBe(191);
  });
});

describe('parseFacility', () => {
  it('takes the names logger(1) knows, in any case, and the numbers 0-23', () => {
    expect(['kern', 'USER', 'daemon', 'authpriv', 'local0', 'Local7'].map(parseFacility)).toEqual([0, 1, 3, 10, 16, 23]);
    expect(['0', '19', '23'].map(parseFacility)).toEqual([0, 19, 23]);
  });

  it('refuses anything else', () => {
    expect(['24', '-1', 'local8', '', '1.5', '007', 'user,'].map(parseFacility)).toEqual([null, null, null, null, null, null, null]);
  });
});

describe('syslog message text', () => {
  const at = Date.UTC(2026, 10, 27, 15, 4, 5);

  it('frames RFC 5424 with upstream fields and a UTC timestamp', () => {
    expect(syslogDatagramText(DEFAULT_SYSLOG, 4, at, '10.0.0.1', 'hello')).toBe('<12>1 2026-11-27T15:04:05.000Z 10.0.0.1 nacl 1 UDPOUT - hello');
  });

  it('frames RFC 3164 with the local BSD timestamp, host and tag', () => {
    expect(syslogDatagramText({ facility: 16, framing: 'rfc3164' }, 6, at, '10.0.0.1', 'hello')).toMatch(/^<134>Nov [ \d]\d \d\d:\d\d:05 10\.0\.0\.1 nacl\[1\]: hello$/);
  });

  it('prints the console line as <PRI> FACILITY.SEVERITY TIME nacl: MSG', () => {
    expect(syslogConsoleLine(DEFAULT_SYSLOG, 0, at, 'down')).toBe('<8> USER.EMERG 2026-11-27T15:04:05.000Z nacl: down');
  });
});

describe('local time texts', () => {
  const local = new Date(2026, 10, 7, 9, 5, 3).getTime();

  it('prints strftime %c of the C locale, the day padded with a space', () => {
    expect(cTimeText(local)).toBe('Sat Nov  7 09:05:03 2026');
  });

  it('prints the RFC 3164 timestamp without the year', () => {
    expect(bsdTimestamp(local)).toBe('Nov  7 09:05:03');
  });
});
