/** What every function shares: a logger that writes through the invocation context, and the services. */
import type { InvocationContext } from '@azure/functions';
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
 * for exactly this invocation.
 */
export function inInvocation<T>(
  context: InvocationContext,
  fields: Record<string, unknown>,
  body: (log: Logger) => Promise<T>,
): Promise<T> {
  const log = contextLogger(context, fields);
  return runWithLogger(log, () => body(log));
}

export function services(log: Logger): Services {
  return getServices(log);
}
