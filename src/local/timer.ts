/**
 * Timer triggers: the NCRONTAB schedule (six fields, seconds first; `%SETTING%` resolved from the
 * app settings) run with croner. Runs never overlap: a tick that finds the previous run still going
 * is skipped, as the host's singleton lock does.
 */
import type { Timer } from '@azure/functions';
import { Cron } from 'croner';
import { MirrorError, toErrorInfo } from '../lib/core/errors';
import type { Logger } from '../lib/core/log';
import type { Invoker } from './invoke';
import type { TimerFunction } from './registry';

/** Replaces each `%NAME%` with the app setting NAME, as the host resolves binding expressions. */
export function resolveSettingRefs(text: string, lookup: (name: string) => string | undefined): string {
  return text.replace(/%([A-Za-z0-9_.:-]+)%/g, (_, name: string) => {
    const v = lookup(name);
    if (v === undefined || v.trim() === '') {
      throw new MirrorError('CONFIG_INVALID', `app setting ${name} is referenced by a schedule but not set`);
    }
    return v.trim();
  });
}

export class TimerRunner {
  private readonly cron: Cron;
  private running: Promise<void> | undefined;
  private last: Date | undefined;
  private readonly log: Logger;

  constructor(
    private readonly fn: TimerFunction,
    readonly schedule: string,
    private readonly invoker: Invoker,
    log: Logger,
  ) {
    this.log = log.child({ function: fn.name });
    if (schedule.trim().split(/\s+/).length !== 6) {
      throw new MirrorError(
        'CONFIG_INVALID',
        `${fn.name}: "${schedule}" is not an NCRONTAB expression with six fields`,
      );
    }
    this.cron = new Cron(schedule, { paused: true }, () => {
      if (this.running) {
        this.log.warn('timer.skipped', { reason: 'the previous run is still going' });
        return;
      }
      void this.trigger(false);
    });
  }

  start(): void {
    this.cron.resume();
    this.log.info('timer.scheduled', { schedule: this.schedule, next: this.cron.nextRun()?.toISOString() });
    if (this.fn.runOnStartup) void this.trigger(false);
  }

  /** The next occurrence, for the start-up listing. */
  next(): Date | undefined {
    return this.cron.nextRun() ?? undefined;
  }

  private timerObject(isPastDue: boolean): Timer {
    const now = new Date();
    return {
      isPastDue,
      schedule: { adjustForDST: true },
      scheduleStatus: {
        last: (this.last ?? now).toISOString(),
        next: (this.cron.nextRun() ?? now).toISOString(),
        lastUpdated: now.toISOString(),
      },
    };
  }

  /** Runs the function now, after the current run if one is going (never two at once). */
  trigger(isPastDue: boolean): Promise<void> {
    const previous = this.running ?? Promise.resolve();
    const run = previous.then(async () => {
      const timer = this.timerObject(isPastDue);
      this.last = new Date();
      try {
        await this.invoker.run(this.fn.name, 'timer', {}, (ctx) => this.fn.handler(timer, ctx));
      } catch (e) {
        // The invoker logged it; a timer failure waits for the next occurrence, as in the host.
        this.log.warn('timer.run-failed', { error: toErrorInfo(e) });
      }
    });
    const tracked = run.finally(() => {
      if (this.running === tracked) this.running = undefined;
    });
    this.running = tracked;
    return tracked;
  }

  stop(): void {
    this.cron.stop();
  }
}
