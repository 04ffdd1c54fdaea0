import { describe, expect, it } from 'vitest';
import {
  EARLY_FIRE_MS,
  MAX_GRACE_MS,
  graceMs,
  nextOccurrence,
  scheduleHealth,
} from '../../../src/lib/jobs/schedule-health';

const SIX_HOURLY = '0 0 */6 * * *';
const EVERY_FIVE_MINUTES = '0 */5 * * * *';
const at = (iso: string) => new Date(iso);

describe('scheduleHealth', () => {
  it('before the first run: lastRunAt null, next due after the watch began, overdue once it passed', () => {
    const record = { lastRunAt: undefined, watchingSince: '2026-11-30T07:30:00.000Z' };
    const early = scheduleHealth(SIX_HOURLY, record, at('2026-11-30T11:00:00Z'));
    expect(early).toEqual({ lastRunAt: null, nextDueAt: '2026-11-30T12:00:00.000Z', overdue: false });
    const late = scheduleHealth(SIX_HOURLY, record, at('2026-11-30T12:10:00.001Z'));
    expect(late).toEqual({ lastRunAt: null, nextDueAt: '2026-11-30T12:00:00.000Z', overdue: true });
  });

  it('with no record at all, the next occurrence after now, never overdue', () => {
    expect(scheduleHealth(SIX_HOURLY, undefined, at('2026-11-30T13:00:00Z'))).toEqual({
      lastRunAt: null,
      nextDueAt: '2026-11-30T18:00:00.000Z',
      overdue: false,
    });
  });

  it('is due at the occurrence after the last run and overdue ten minutes later, not before', () => {
    const record = { lastRunAt: '2026-11-30T12:00:00.040Z', watchingSince: undefined };
    const due = '2026-11-30T18:00:00.000Z';
    expect(scheduleHealth(SIX_HOURLY, record, at('2026-11-30T18:05:00Z'))).toEqual({
      lastRunAt: '2026-11-30T12:00:00.040Z',
      nextDueAt: due,
      overdue: false,
    });
    expect(scheduleHealth(SIX_HOURLY, record, at('2026-11-30T18:10:00.000Z')).overdue).toBe(false);
    expect(scheduleHealth(SIX_HOURLY, record, at('2026-11-30T18:10:00.001Z')).overdue).toBe(true);
  });

  it('counts a run a moment early as the run that was due', () => {
    const early = new Date(Date.parse('2026-11-30T12:00:00Z') - EARLY_FIRE_MS + 10).toISOString();
    const h = scheduleHealth(
      SIX_HOURLY,
      { lastRunAt: early, watchingSince: undefined },
      at('2026-11-30T12:30:00Z'),
    );
    expect(h).toMatchObject({ nextDueAt: '2026-11-30T18:00:00.000Z', overdue: false });
  });

  it('gives a frequent schedule one interval of grace instead of ten minutes', () => {
    const record = { lastRunAt: '2026-11-30T12:00:00Z', watchingSince: undefined };
    expect(graceMs(EVERY_FIVE_MINUTES, at('2026-11-30T12:05:00Z'))).toBe(5 * 60_000);
    expect(scheduleHealth(EVERY_FIVE_MINUTES, record, at('2026-11-30T12:10:00Z')).overdue).toBe(false);
    expect(scheduleHealth(EVERY_FIVE_MINUTES, record, at('2026-11-30T12:10:01Z')).overdue).toBe(true);
    expect(graceMs(SIX_HOURLY, at('2026-11-30T18:00:00Z'))).toBe(MAX_GRACE_MS);
  });

  it('evaluates the schedule in UTC, whatever the process time zone', () => {
    expect(nextOccurrence('0 30 9 * * *', at('2026-06-30T10:00:00Z'))?.toISOString()).toBe(
      '2026-07-01T09:30:00.000Z',
    );
  });

  it('treats unreadable times as no record and a schedule with no next occurrence as never due', () => {
    const junk = { lastRunAt: 'yesterday', watchingSince: 'not a time' };
    expect(scheduleHealth(SIX_HOURLY, junk, at('2026-11-30T13:00:00Z'))).toEqual({
      lastRunAt: null,
      nextDueAt: '2026-11-30T18:00:00.000Z',
      overdue: false,
    });
    const never = '0 0 0 30 2 *';
    expect(
      scheduleHealth(
        never,
        { lastRunAt: '2026-01-01T00:00:00Z', watchingSince: undefined },
        at('2027-01-01T00:00:00Z'),
      ),
    ).toEqual({
      lastRunAt: '2026-01-01T00:00:00.000Z',
      nextDueAt: null,
      overdue: false,
    });
  });
});
