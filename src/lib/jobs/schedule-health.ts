/**
 * Schedule health: when `mirrorSchedule` last ran, when it is next due, and whether it is overdue.
 * On Flex Consumption a timer trigger can stop firing after a deployment while HTTP keeps
 * answering; this is how the app notices. Pure: the record comes from the job store, the schedule
 * from the settings, the clock from the caller.
 *
 * Rules:
 * - Occurrences come from the NCRONTAB schedule evaluated in UTC, as the Functions host does on
 *   Flex Consumption.
 * - `nextDueAt` is the first occurrence more than EARLY_FIRE_MS after the last run (a host may fire
 *   a moment before the second it was due); before the first run, the first occurrence after the
 *   app started watching; with neither, the next occurrence after `now`.
 * - `overdue` = now > nextDueAt + grace, grace = the smaller of one interval (from `nextDueAt` to the
 *   occurrence after it) and MAX_GRACE_MS. Ten minutes is well above the time a scaled-to-zero Flex
 *   instance needs to start and fire a late timer, and well below any schedule worth alerting on;
 *   for schedules more frequent than that, a run is overdue once the following run is due.
 */
import { Cron } from 'croner';

/** What the job store keeps about the schedule. Times are ISO 8601 strings. */
export interface ScheduleRecord {
  /** Start of the last `mirrorSchedule` run; undefined before the first. */
  lastRunAt: string | undefined;
  /** When an invocation first looked at the schedule and found no run recorded. */
  watchingSince: string | undefined;
}

/** The `schedule` object of `GET /api/mirror` (DESIGN §3). */
export interface ScheduleHealth {
  lastRunAt: string | null;
  nextDueAt: string | null;
  overdue: boolean;
}

export const MAX_GRACE_MS = 10 * 60 * 1000;
export const EARLY_FIRE_MS = 1000;

function cronOf(schedule: string): Cron {
  return new Cron(schedule, { paused: true, timezone: 'Etc/UTC' });
}

function validTime(iso: string | undefined): Date | undefined {
  if (iso === undefined) return undefined;
  const t = Date.parse(iso);
  return Number.isFinite(t) ? new Date(t) : undefined;
}

/** The first occurrence of `schedule` strictly after `after` (second resolution), or undefined. */
export function nextOccurrence(schedule: string, after: Date): Date | undefined {
  return cronOf(schedule).nextRun(after) ?? undefined;
}

/** Milliseconds a run due at `due` may be late before it counts as overdue (see the module rules). */
export function graceMs(schedule: string, due: Date): number {
  const following = nextOccurrence(schedule, due);
  if (following === undefined) return MAX_GRACE_MS;
  return Math.min(MAX_GRACE_MS, following.getTime() - due.getTime());
}

/**
 * The health of `schedule` given what the store recorded, at `now`. Never throws for a schedule
 * that passed the settings check; a record with unreadable times counts as no record.
 */
export function scheduleHealth(
  schedule: string,
  record: ScheduleRecord | undefined,
  now: Date,
): ScheduleHealth {
  const lastRun = validTime(record?.lastRunAt);
  const since = validTime(record?.watchingSince);
  const from = lastRun ? new Date(lastRun.getTime() + EARLY_FIRE_MS) : (since ?? now);
  const due = nextOccurrence(schedule, from);
  return {
    lastRunAt: lastRun ? lastRun.toISOString() : null,
    nextDueAt: due ? due.toISOString() : null,
    overdue: due !== undefined && now.getTime() > due.getTime() + graceMs(schedule, due),
  };
}
