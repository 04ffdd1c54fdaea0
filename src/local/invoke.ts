/**
 * One invocation of a function as the host makes it: an invocation id, start/end events around it,
 * and the function's log calls turned into structured lines on the host's output. Where the
 * function runs is the backend's business: in this process (tests) or in the worker process
 * (`npm start`, see worker-process.ts), always through the library's invocation path.
 */
import { randomUUID } from 'node:crypto';
import { toErrorInfo } from '../lib/core/errors';
import { redact, type LogLevel, type Logger, type LogSink } from '../lib/core/log';
import type {
  CoreLogSink,
  FunctionsCore,
  RpcInvocationRequest,
  RpcInvocationResponse,
} from './functions-core';
import type { InvocationInput } from './rpc-shapes';

/** Runs one invocation request; rejects with what the function threw, or why it could not finish. */
export type InvocationBackend = (
  functionName: string,
  request: RpcInvocationRequest,
  log: CoreLogSink,
) => Promise<RpcInvocationResponse>;

export interface Invoker {
  /** Invokes `functionName` with `input`; resolves with the worker's response, rejects on failure. */
  run(functionName: string, trigger: string, input: InvocationInput): Promise<RpcInvocationResponse>;
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
function isJsonLine(message: string): boolean {
  return message.startsWith('{') && message.endsWith('}');
}

/** The backend that runs functions in this process, through the stand-in's invocation path. */
export function inProcessBackend(core: FunctionsCore): InvocationBackend {
  return (name, request, log) => core.invoke(name, request, log);
}

export function createInvoker(log: Logger, sink: LogSink, backend: InvocationBackend): Invoker {
  const active = new Set<Promise<unknown>>();
  const run = async (
    functionName: string,
    trigger: string,
    input: InvocationInput,
  ): Promise<RpcInvocationResponse> => {
    const invocationId = randomUUID();
    const ilog = log.child({ function: functionName, invocationId });
    const fnLog: CoreLogSink = (level, category, message) => {
      if (category === 'user' && isJsonLine(message)) sink(levelOf(level), redact(message));
      else if (level !== 'trace' && level !== 'debug' && level !== 'none')
        ilog[levelOf(level)]('function.log', { category, message });
    };
    const started = Date.now();
    ilog.info('function.started', { trigger });
    const p = backend(functionName, { invocationId, ...input }, fnLog);
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
