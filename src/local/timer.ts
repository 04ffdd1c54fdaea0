/**
 * Timer triggers: the NCRONTAB schedule (six fields, seconds first, UTC; `%SETTING%` resolved from
 * the app settings only) run with croner. Runs never overlap: a tick that finds the previous run
 * still going is skipped, as the host's singleton lock does.
 */
import type { Cron } from 'croner';
import { ncrontabJob } from '../lib/config/ncrontab';
import { MirrorError, toErrorInfo } from '../lib/core/errors';
import type { Logger } from '../lib/core/log';
import type { Invoker } from './invoke';
import type { TimerFunction } from './registry';
import { timerInvocation } from './rpc-shapes';

/**
 * Replaces each `%NAME%` with the app setting NAME, as the host resolves binding expressions
 * (`INameResolver`: app settings only, no defaults of the app). Throws `CONFIG_INVALID` naming a
 * setting that is missing or empty: the host then does not index the function.
 */
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
    try {
      this.cron = ncrontabJob(schedule, () => {
        if (this.running) {
          this.log.warn('timer.skipped', { reason: 'the previous run is still going' });
          return;
        }
        void this.trigger(false);
      });
    } catch (e) {
      throw new MirrorError('CONFIG_INVALID', `${fn.name}: the schedule ${toErrorInfo(e).message}`);
    }
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

  /** Runs the function now, after the current run if one is going (never two at once). */
  trigger(isPastDue: boolean): Promise<void> {
    const previous = this.running ?? Promise.resolve();
    const run = previous.then(async () => {
      const input = timerInvocation(this.fn.triggerBinding, {
        isPastDue,
        last: this.last,
        next: this.cron.nextRun() ?? undefined,
      });
      this.last = new Date();
      try {
        await this.invoker.run(this.fn.name, 'timer', input);
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
