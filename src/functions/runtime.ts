/** What every function shares: a logger that writes through the invocation context, and the services. */
import type { InvocationContext } from '@azure/functions';
import { createLogger, enterLogger, type Logger } from '../lib/core/log';
import { getServices, type Services } from '../lib/mirror/services';

/** The invocation's logger; shared clients log through it for the rest of this invocation. */
export function contextLogger(context: InvocationContext, fields: Record<string, unknown> = {}): Logger {
  const log = createLogger(
    (level, line) => {
      if (level === 'error') context.error(line);
      else if (level === 'warn') context.warn(line);
      else context.log(line);
    },
    { function: context.functionName, invocationId: context.invocationId, ...fields },
  );
  enterLogger(log);
  return log;
}

export function services(log: Logger): Services {
  return getServices(log);
}
