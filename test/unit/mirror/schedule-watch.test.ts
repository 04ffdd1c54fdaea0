import { describe, expect, it } from 'vitest';
import { createLogger, type LogLevel } from '../../../src/lib/core/log';
import type { ScheduleRecord } from '../../../src/lib/jobs/schedule-health';
import { CACHE_MS, ScheduleWatch } from '../../../src/lib/mirror/schedule-watch';

const SCHEDULE = '0 0 */6 * * *';

/** The three store calls the watch makes, in memory, counting reads and writes. */
function memoryStore(initial?: ScheduleRecord) {
  let record = initial;
  const calls = { get: 0, watch: 0, record: 0 };
  let failing = false;
  return {
    calls,
    fail(on: boolean) {
      failing = on;
    },
    getScheduleRecord() {
      calls.get++;
      if (failing) return Promise.reject(new Error('table unavailable'));
      return Promise.resolve(record);
    },
    watchSchedule(now: Date) {
      calls.watch++;
      if (failing) return Promise.reject(new Error('table unavailable'));
      record ??= { lastRunAt: undefined, watchingSince: now.toISOString() };
      return Promise.resolve(record);
    },
    recordScheduleRun(at: Date) {
      calls.record++;
      if (failing) return Promise.reject(new Error('table unavailable'));
      record = { lastRunAt: at.toISOString(), watchingSince: record?.watchingSince };
      return Promise.resolve();
    },
  };
}

function capture() {
  const lines: Array<{ level: LogLevel; event: string; fields: Record<string, unknown> }> = [];
  const log = createLogger((level, line) => {
    const { event, ...fields } = JSON.parse(line) as { event: string };
    lines.push({ level, event, fields });
  });
  return { log, lines };
}

describe('ScheduleWatch', () => {
  it('reads the record at most once per cache period', async () => {
    const store = memoryStore({ lastRunAt: '2026-11-30T12:00:00Z', watchingSince: undefined });
    const watch = new ScheduleWatch(store, SCHEDULE);
    const t0 = Date.parse('2026-11-30T13:00:00Z');
    for (let i = 0; i < 5; i++) await watch.check(capture().log, new Date(t0 + i * 1000));
    expect(store.calls.watch).toBe(1);
    await watch.check(capture().log, new Date(t0 + CACHE_MS));
    expect(store.calls.watch).toBe(2);
  });

  it('logs schedule.overdue at error level when the timer missed its run, and only then', async () => {
    const store = memoryStore({ lastRunAt: '2026-11-30T00:00:00Z', watchingSince: undefined });
    const watch = new ScheduleWatch(store, SCHEDULE, 0);
    const onTime = capture();
    await watch.check(onTime.log, new Date('2026-11-30T06:05:00Z'));
    expect(onTime.lines).toEqual([]);
    const late = capture();
    const h = await watch.check(late.log, new Date('2026-11-30T07:00:00Z'));
    expect(h).toEqual({
      lastRunAt: '2026-11-30T00:00:00.000Z',
      nextDueAt: '2026-11-30T06:00:00.000Z',
      overdue: true,
    });
    expect(late.lines).toEqual([
      {
        level: 'error',
        event: 'schedule.overdue',
        fields: expect.objectContaining({ ...h, schedule: SCHEDULE }),
      },
    ]);
  });

  it('starts watching when nothing was recorded, so a timer that never fires becomes overdue', async () => {
    const store = memoryStore();
    const watch = new ScheduleWatch(store, SCHEDULE, 0);
    const first = await watch.check(capture().log, new Date('2026-11-30T01:00:00Z'));
    expect(first).toEqual({ lastRunAt: null, nextDueAt: '2026-11-30T06:00:00.000Z', overdue: false });
    const later = await watch.check(capture().log, new Date('2026-11-30T09:00:00Z'));
    expect(later).toMatchObject({ nextDueAt: '2026-11-30T06:00:00.000Z', overdue: true });
  });

  it('never throws: a store failure is a warning and no health', async () => {
    const store = memoryStore();
    store.fail(true);
    const { log, lines } = capture();
    await expect(new ScheduleWatch(store, SCHEDULE).check(log)).resolves.toBeUndefined();
    expect(lines.map((l) => [l.level, l.event])).toEqual([['warn', 'schedule.check-failed']]);
  });

  it('records a run, logs schedule.ran with the next due time, and serves it from the cache', async () => {
    const store = memoryStore({ lastRunAt: '2026-11-29T00:00:00Z', watchingSince: undefined });
    const watch = new ScheduleWatch(store, SCHEDULE);
    const { log, lines } = capture();
    await watch.recordRun(new Date('2026-11-30T12:00:00.020Z'), log, { enqueued: 2 });
    expect(lines).toEqual([
      {
        level: 'info',
        event: 'schedule.ran',
        fields: expect.objectContaining({
          enqueued: 2,
          lastRunAt: '2026-11-30T12:00:00.020Z',
          nextDueAt: '2026-11-30T18:00:00.000Z',
        }),
      },
    ]);
    const h = await watch.health(new Date('2026-11-30T12:00:30Z'), true);
    expect(h).toEqual({
      lastRunAt: '2026-11-30T12:00:00.020Z',
      nextDueAt: '2026-11-30T18:00:00.000Z',
      overdue: false,
    });
    expect(store.calls).toEqual({ get: 0, watch: 0, record: 1 });
  });

  it('a failed record write is an error line, not a thrown error', async () => {
    const store = memoryStore();
    store.fail(true);
    const { log, lines } = capture();
    await new ScheduleWatch(store, SCHEDULE).recordRun(new Date('2026-11-30T12:00:00Z'), log);
    expect(lines.map((l) => [l.level, l.event])).toEqual([
      ['error', 'schedule.record-failed'],
      ['info', 'schedule.ran'],
    ]);
  });
});
