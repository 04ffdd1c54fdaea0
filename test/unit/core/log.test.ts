import { describe, expect, it } from 'vitest';
import {
  ambientLogger,
  createLogger,
  runWithLogger,
  redact,
  registerSecret,
  type LogLevel,
} from '../../../src/lib/core/log';

function capture() {
  const lines: Array<{ level: LogLevel; line: string }> = [];
  return { lines, log: createLogger((level, line) => lines.push({ level, line })) };
}

describe('structured logging', () => {
  it('writes one JSON line per event with the context fields', () => {
    const { lines, log } = capture();
    log
      .child({ series: 'bosh-azure-hyperv-ubuntu-jammy-go_agent', version: '1.682' })
      .info('job.stage', { stage: 'transfer' });
    expect(lines).toHaveLength(1);
    const rec = JSON.parse(lines[0]!.line);
    expect(rec).toMatchObject({
      level: 'info',
      event: 'job.stage',
      series: 'bosh-azure-hyperv-ubuntu-jammy-go_agent',
      version: '1.682',
      stage: 'transfer',
    });
    expect(Date.parse(rec.time)).not.toBeNaN();
  });

  it('masks registered secrets wherever they appear, and secret-looking fields', () => {
    const token = 'ghp_SuperSecretToken1234567890';
    registerSecret(token);
    const { lines, log } = capture();
    log.error('notify.failed', {
      error: new Error(`GitHub said no to ${token}`),
      headers: { authorization: `Bearer ${token}` },
      token,
      url: 'https://acct.blob.core.windows.net/c/b?sv=2024&sig=abcDEF123%3D',
      cs: 'DefaultEndpointsProtocol=https;AccountName=a;AccountKey=c2VjcmV0a2V5;',
    });
    const line = lines[0]!.line;
    expect(line).not.toContain(token);
    expect(line).not.toContain('abcDEF123');
    expect(line).not.toContain('c2VjcmV0a2V5');
    expect(line).toContain('GitHub said no to ***');
  });

  it('redacts bearer tokens in free text', () => {
    expect(redact('Authorization: Bearer eyJ0eXAi.abc.def')).toBe('Authorization: Bearer ***');
  });
});

describe('ambient logger', () => {
  it('sends a shared client’s lines to the logger of the invocation it runs in', async () => {
    const fallback = capture();
    const shared = ambientLogger(fallback.log).child({ component: 'boshio' });
    const a = capture();
    const b = capture();
    await Promise.all([
      runWithLogger(a.log.child({ invocationId: 'a' }), async () => {
        await new Promise((r) => setTimeout(r, 10));
        shared.info('api.retry');
      }),
      runWithLogger(b.log.child({ invocationId: 'b' }), async () => {
        await new Promise((r) => setTimeout(r, 5));
        shared.warn('download.cut');
      }),
    ]);
    expect(a.lines.map((l) => JSON.parse(l.line) as unknown)).toEqual([
      expect.objectContaining({ event: 'api.retry', invocationId: 'a', component: 'boshio' }),
    ]);
    expect(b.lines.map((l) => JSON.parse(l.line) as unknown)).toEqual([
      expect.objectContaining({ event: 'download.cut', invocationId: 'b' }),
    ]);
    expect(fallback.lines).toHaveLength(0);
    // The scope ends with the invocation: what runs after it logs to the fallback.
    shared.info('after.invocations');
    expect(fallback.lines.map((l) => JSON.parse(l.line) as unknown)).toEqual([
      expect.objectContaining({ event: 'after.invocations' }),
    ]);
    expect(a.lines).toHaveLength(1);
  });
});
