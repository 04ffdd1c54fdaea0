/**
 * The watch on the schedule that every invocation shares: it records each `mirrorSchedule` run
 * and says, cheaply, whether the schedule is overdue. At most one table read per CACHE_MS per
 * process; a failure to look never fails the invocation that looked.
 */
import { toErrorInfo } from '../core/errors';
import type { Logger } from '../core/log';
import type { JobStore } from '../jobs/store';
import { scheduleHealth, type ScheduleHealth, type ScheduleRecord } from '../jobs/schedule-health';

/** How long a read of the schedule's record is reused (ms). */
export const CACHE_MS = 60_000;

export class ScheduleWatch {
  private cached: { readAt: number; record: ScheduleRecord | undefined; watched: boolean } | undefined;

  constructor(
    private readonly jobs: Pick<JobStore, 'getScheduleRecord' | 'watchSchedule' | 'recordScheduleRun'>,
    private readonly schedule: string,
    private readonly cacheMs = CACHE_MS,
  ) {}

  /**
   * The health at `now`. `watch` (the functions) creates the record when there is none, so that a
   * schedule that never fires becomes overdue; without it (the CLI) nothing is written.
   */
  async health(now = new Date(), watch = false): Promise<ScheduleHealth> {
    const c = this.cached;
    const fresh = c !== undefined && now.getTime() - c.readAt < this.cacheMs && (c.watched || !watch);
    if (!fresh) {
      const record = watch ? await this.jobs.watchSchedule(now) : await this.jobs.getScheduleRecord();
      this.cached = { readAt: now.getTime(), record, watched: watch };
    }
    return scheduleHealth(this.schedule, this.cached!.record, now);
  }

  /**
   * For the start of every invocation: logs `schedule.overdue` at error level when the schedule is
   * overdue. Never throws; a failure to look is a warning.
   */
  async check(log: Logger, now = new Date()): Promise<ScheduleHealth | undefined> {
    try {
      const h = await this.health(now, true);
      if (h.overdue) log.error('schedule.overdue', { ...h, schedule: this.schedule });
      return h;
    } catch (e) {
      log.warn('schedule.check-failed', { error: toErrorInfo(e) });
      return undefined;
    }
  }

  /** Records a run that started at `startedAt` and logs `schedule.ran` with the next due time. */
  async recordRun(startedAt: Date, log: Logger, fields: Record<string, unknown> = {}): Promise<void> {
    const record: ScheduleRecord = {
      lastRunAt: startedAt.toISOString(),
      watchingSince: this.cached?.record?.watchingSince,
    };
    try {
      await this.jobs.recordScheduleRun(startedAt);
      this.cached = { readAt: startedAt.getTime(), record, watched: true };
    } catch (e) {
      log.error('schedule.record-failed', { error: toErrorInfo(e) });
    }
    const h = scheduleHealth(this.schedule, record, startedAt);
    // The alert rule (infra/app/alerts.bicep) reads lastRunAt and nextDueAt from this line.
    log.info('schedule.ran', { ...fields, lastRunAt: h.lastRunAt, nextDueAt: h.nextDueAt });
  }
}
