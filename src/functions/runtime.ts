/** What every function shares: a logger that writes through the invocation context, and the services. */
import type { InvocationContext } from '@azure/functions';
import { toErrorInfo } from '../lib/core/errors';
import { createLogger, runWithLogger, type Logger } from '../lib/core/log';
import { getServices, type Services } from '../lib/mirror/services';

/** The invocation's logger: each line goes through the context, so the host attributes it. */
function contextLogger(context: InvocationContext, fields: Record<string, unknown>): Logger {
  return createLogger(
    (level, line) => {
      if (level === 'error') context.error(line);
      else if (level === 'warn') context.warn(line);
      else context.log(line);
    },
    { function: context.functionName, invocationId: context.invocationId, ...fields },
  );
}

/**
 * Runs a handler's body with its invocation's logger; the shared clients (services) log through it
 * for exactly this invocation. Every invocation first looks at the schedule (watchSchedule).
 */
export function inInvocation<T>(
  context: InvocationContext,
  fields: Record<string, unknown>,
  body: (log: Logger) => Promise<T>,
): Promise<T> {
  const log = contextLogger(context, fields);
  return runWithLogger(log, async () => {
    await watchSchedule(log);
    return body(log);
  });
}

/**
 * Logs `schedule.overdue` at error level when the timer has stopped firing (one table read per
 * minute per process at most). Never fails the invocation.
 */
async function watchSchedule(log: Logger): Promise<void> {
  try {
    await services(log).scheduleWatch.check(log);
  } catch (e) {
    // services() throws on bad settings; the function itself reports that.
    log.warn('schedule.check-failed', { error: toErrorInfo(e) });
  }
}

export function services(log: Logger): Services {
  return getServices(log);
}
