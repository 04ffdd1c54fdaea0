/**
 * The alert rules read the app's log lines by event name: every event a query names must be one the
 * app really writes, at the level the rule expects, or the alert would silently never fire.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(__dirname, '..');
const ALERTS = readFileSync(join(ROOT, 'infra/app/alerts.bicep'), 'utf8');

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? sources(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : [],
  );
}

const SRC = sources(join(ROOT, 'src')).map((f) => readFileSync(f, 'utf8'));

/** Events the app logs at `level`, as `.level('event'` calls. */
function logged(level: 'info' | 'warn' | 'error'): Set<string> {
  const out = new Set<string>();
  for (const text of SRC) {
    for (const m of text.matchAll(new RegExp(`\\.${level}\\(\\s*'([a-z][a-z0-9_.-]*)'`, 'g'))) out.add(m[1]!);
  }
  return out;
}

/** Event names the queries compare with: `== "x"`, `in ("x", …)`. */
function queried(): string[] {
  const names = new Set<string>();
  for (const m of ALERTS.matchAll(/==\s*"([a-z][a-z0-9_.-]*)"/g)) names.add(m[1]!);
  for (const m of ALERTS.matchAll(/\bin\s*\(([^)]*)\)/g)) {
    for (const n of m[1]!.matchAll(/"([a-z][a-z0-9_.-]*)"/g)) names.add(n[1]!);
  }
  return [...names].sort();
}

describe('infra/app/alerts.bicep', () => {
  it('queries only events the app writes: schedule.ran at info, failures and overdue at error', () => {
    expect(queried()).toEqual([
      'job.failed',
      'poison.bad-message',
      'poison.no-job',
      'schedule.overdue',
      'schedule.ran',
    ]);
    const errors = logged('error');
    for (const e of ['job.failed', 'poison.bad-message', 'poison.no-job', 'schedule.overdue'])
      expect(errors, e).toContain(e);
    expect(logged('info')).toContain('schedule.ran');
  });

  it('reads lastRunAt and nextDueAt from schedule.ran, the fields the app puts on that line', () => {
    expect(ALERTS).toContain('todatetime(e.lastRunAt)');
    expect(ALERTS).toContain('todatetime(e.nextDueAt)');
    const watch = readFileSync(join(ROOT, 'src/lib/mirror/schedule-watch.ts'), 'utf8');
    expect(watch).toMatch(/info\('schedule\.ran', \{[^}]*lastRunAt: h\.lastRunAt, nextDueAt: h\.nextDueAt/);
  });

  it('e-mails only when an address is given', () => {
    expect(ALERTS).toMatch(/emailReceivers: empty\(alertEmail\)\s*\?\s*\[\]/);
  });
});
