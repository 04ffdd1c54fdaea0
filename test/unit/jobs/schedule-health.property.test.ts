/**
 * Properties of schedule health over any schedule, record and clock: it never throws, the next due
 * time comes after the last run, and once overdue a schedule stays overdue until a run is recorded.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { graceMs, scheduleHealth, type ScheduleRecord } from '../../../src/lib/jobs/schedule-health';

const RUNS = { numRuns: 300 };
const schedule = fc.constantFrom(
  '0 0 */6 * * *',
  '0 */5 * * * *',
  '*/30 * * * * *',
  '0 30 9 * * 1-5',
  '0 0 0 1 * *',
  '0 0 0 29 2 *',
  '0 0 0 30 2 *',
  '0 15,45 8-17 * * *',
);
const BASE = Date.parse('2026-01-01T00:00:00Z');
const time = fc.integer({ min: 0, max: 400 * 24 * 3600 * 1000 }).map((ms) => new Date(BASE + ms));
const iso = fc.oneof(
  time.map((d) => d.toISOString()),
  fc.string({ maxLength: 30 }),
  fc.constant(undefined),
);
const record: fc.Arbitrary<ScheduleRecord | undefined> = fc.option(
  fc.record({ lastRunAt: iso, watchingSince: iso }),
  { nil: undefined },
);

describe('schedule health (property)', () => {
  it('never throws, and a run is next due after the last one', () => {
    fc.assert(
      fc.property(schedule, record, time, (s, r, now) => {
        const h = scheduleHealth(s, r, now);
        if (h.lastRunAt !== null && h.nextDueAt !== null) {
          expect(Date.parse(h.nextDueAt)).toBeGreaterThan(Date.parse(h.lastRunAt));
        }
        if (h.nextDueAt === null) expect(h.overdue).toBe(false);
        if (h.overdue) expect(now.getTime()).toBeGreaterThan(Date.parse(h.nextDueAt!));
      }),
      RUNS,
    );
  });

  it('is overdue exactly past the grace, and stays so as time goes on', () => {
    fc.assert(
      fc.property(
        schedule,
        record,
        time,
        fc.integer({ min: 0, max: 30 * 24 * 3600 * 1000 }),
        (s, r, now, later) => {
          const h = scheduleHealth(s, r, now);
          const l = scheduleHealth(s, r, new Date(now.getTime() + later));
          // With a record the due time is fixed; without one it follows the clock and is never overdue.
          if (h.overdue) expect(l.overdue).toBe(true);
          if (h.nextDueAt !== null) {
            const due = new Date(h.nextDueAt);
            expect(h.overdue).toBe(now.getTime() > due.getTime() + graceMs(s, due));
          }
        },
      ),
      RUNS,
    );
  });

  it('is on time right after a recorded run', () => {
    fc.assert(
      fc.property(schedule, time, iso, (s, ran, since) => {
        const h = scheduleHealth(s, { lastRunAt: ran.toISOString(), watchingSince: since }, ran);
        expect(h.overdue).toBe(false);
        expect(h.lastRunAt).toBe(ran.toISOString());
      }),
      RUNS,
    );
  });
});
