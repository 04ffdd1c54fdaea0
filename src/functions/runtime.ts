/** What every function shares: a logger that writes through the invocation context, and the services. */
import type { InvocationContext } from '@azure/functions';
import { createLogger, type Logger } from '../lib/log';
import { getServices, type Services } from '../lib/services';

export function contextLogger(context: InvocationContext, fields: Record<string, unknown> = {}): Logger {
  return createLogger(
    (level, line) => {
      if (level === 'error') context.error(line);
      else if (level === 'warn') context.warn(line);
      else context.log(line);
    },
    { function: context.functionName, invocationId: context.invocationId, ...fields },
  );
}

export function services(log: Logger): Services {
  return getServices(log);
}
