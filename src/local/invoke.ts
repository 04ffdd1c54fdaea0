/**
 * One invocation of a function as the host makes it: a fresh InvocationContext whose log calls end
 * up as structured lines on the host's output, and start/end events around the handler.
 */
import { randomUUID } from 'node:crypto';
import { format } from 'node:util';
import { InvocationContext, type TriggerMetadata } from '@azure/functions';
import { toErrorInfo } from '../lib/core/errors';
import { redact, type LogLevel, type Logger, type LogSink } from '../lib/core/log';

export interface Invoker {
  /** Runs `call` with a new context; resolves with its result, rejects with what it threw. */
  run<T>(
    functionName: string,
    trigger: string,
    triggerMetadata: TriggerMetadata,
    call: (context: InvocationContext) => Promise<T> | T,
  ): Promise<T>;
  /** Invocations still running. */
  readonly running: number;
  /** Resolves when none is running or after `limitMs`, whichever comes first. */
  drain(limitMs: number): Promise<boolean>;
}

function levelOf(level: string): LogLevel {
  if (level === 'error' || level === 'critical') return 'error';
  if (level === 'warning') return 'warn';
  return 'info';
}

/** A line a function already shaped (its logger writes JSON through the context) passes as it is. */
function isJsonLine(args: unknown[]): args is [string] {
  return args.length === 1 && typeof args[0] === 'string' && args[0].startsWith('{') && args[0].endsWith('}');
}

export function createInvoker(log: Logger, sink: LogSink): Invoker {
  const active = new Set<Promise<unknown>>();
  const run = async <T>(
    functionName: string,
    trigger: string,
    triggerMetadata: TriggerMetadata,
    call: (context: InvocationContext) => Promise<T> | T,
  ): Promise<T> => {
    const invocationId = randomUUID();
    const ilog = log.child({ function: functionName, invocationId });
    const context = new InvocationContext({
      invocationId,
      functionName,
      triggerMetadata,
      logHandler: (level, ...args) => {
        if (isJsonLine(args)) sink(levelOf(level), redact(args[0]));
        else ilog[levelOf(level)]('function.log', { message: format(...args) });
      },
    });
    const started = Date.now();
    ilog.info('function.started', { trigger });
    const p = (async () => call(context))();
    active.add(p);
    try {
      const result = await p;
      ilog.info('function.succeeded', { durationMs: Date.now() - started });
      return result;
    } catch (e) {
      ilog.error('function.failed', { durationMs: Date.now() - started, error: toErrorInfo(e) });
      throw e;
    } finally {
      active.delete(p);
    }
  };
  return {
    run,
    get running() {
      return active.size;
    },
    async drain(limitMs) {
      if (active.size === 0) return true;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), limitMs)));
      const all = Promise.allSettled([...active]).then(() => true);
      const done = await Promise.race([all, timeout]);
      clearTimeout(timer);
      return done;
    },
  };
}
