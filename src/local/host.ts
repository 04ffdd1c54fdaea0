/**
 * The local stand-in for the Functions host: serves what the function files register (HTTP routes,
 * queue triggers, timers) with host.json's queue settings and functionTimeout, plus the admin
 * route. The functions run in a worker process (as in Azure; `npm start`) or, for tests, in this
 * process; either way through `@azure/functions`' own invocation path. Every event is one
 * structured JSON line.
 */
import type { AddressInfo } from 'node:net';
import type { QueueClient } from '@azure/storage-queue';
import { queueClient } from '../lib/azure/storage-clients';
import { functionTimeoutSeconds, loadConfig, type Config, type Env } from '../lib/config/config';
import { createAzureCredential } from '../lib/azure/credential';
import { MirrorError, toErrorInfo } from '../lib/core/errors';
import { createLogger, stdoutSink, type Logger, type LogSink } from '../lib/core/log';
import { readQueueSettings, type QueueSettings } from './host-settings';
import { createHttpServer } from './http-server';
import { createInvoker, inProcessBackend, type InvocationBackend } from './invoke';
import { HOST_MESSAGE_LOCK_SECONDS, poisonQueueName, QueuePoller } from './queue-poller';
import { loadApp, type FunctionRegistration } from './registry';
import { resolveSettingRefs, TimerRunner } from './timer';
import { WorkerProcess } from './worker-process';

export interface LocalHostOptions {
  port: number;
  /** 127.0.0.1 unless told otherwise: the host asks for no key. */
  hostname?: string;
  /** App settings (resolves `%NAME%` references, local overrides); the process environment by default. */
  env?: Env;
  /** Where log lines go; stdout by default. */
  sink?: LogSink;
  /**
   * Where the functions run: `process`, a worker process restarted when an invocation outlives
   * functionTimeout (as the host does); `in-process` (tests), in this process, never timed out.
   */
  worker?: 'process' | 'in-process';
  /** Which of the registered trigger kinds to serve; all by default. */
  kinds?: ReadonlyArray<FunctionRegistration['kind']>;
  /** Overrides of host.json's queue settings (tests shorten the retry delay and the idle polling). */
  queueSettings?: Partial<QueueSettings>;
  /** First wait after an empty poll. */
  minPollingIntervalMs?: number;
  /** How long close() waits for running invocations. */
  drainLimitMs?: number;
}

export interface LocalHost {
  /** e.g. http://127.0.0.1:7071 */
  readonly url: string;
  readonly functions: readonly FunctionRegistration[];
  /** Lines like Core Tools prints at start: `mirrorRequest: [POST] http://127.0.0.1:7071/api/mirror`. */
  describe(): string[];
  close(): Promise<void>;
}

const DEFAULT_DRAIN_MS = 30_000;

/** Local-only knobs, so a test can make the host retry quickly; never read in Azure. */
function localOverrides(env: Env): Partial<QueueSettings> {
  const out: { visibilityTimeoutMs?: number; maxPollingIntervalMs?: number } = {};
  const vis = env.BASM_LOCAL_VISIBILITY_TIMEOUT_SECONDS?.trim();
  if (vis) {
    if (!/^\d{1,6}$/.test(vis)) {
      throw new MirrorError(
        'CONFIG_INVALID',
        'Setting BASM_LOCAL_VISIBILITY_TIMEOUT_SECONDS is invalid: expected whole seconds',
      );
    }
    out.visibilityTimeoutMs = Number(vis) * 1000;
  }
  const poll = env.BASM_LOCAL_MAX_POLLING_INTERVAL_MS?.trim();
  if (poll) {
    if (!/^\d{1,8}$/.test(poll) || Number(poll) < 1) {
      throw new MirrorError(
        'CONFIG_INVALID',
        'Setting BASM_LOCAL_MAX_POLLING_INTERVAL_MS is invalid: expected milliseconds ≥ 1',
      );
    }
    out.maxPollingIntervalMs = Number(poll);
  }
  return out;
}

/** How long a received message stays invisible while its handler runs (renewed); the host's 10 min by default. */
function messageLockSeconds(env: Env): number | undefined {
  const v = env.BASM_LOCAL_MESSAGE_LOCK_SECONDS?.trim();
  if (!v) return undefined;
  if (!/^\d{1,5}$/.test(v) || Number(v) < 2) {
    throw new MirrorError(
      'CONFIG_INVALID',
      'Setting BASM_LOCAL_MESSAGE_LOCK_SECONDS is invalid: expected whole seconds ≥ 2',
    );
  }
  return Number(v);
}

/** host.json's functionTimeout, or the local override that scales it down for tests. */
function functionTimeoutMs(env: Env): number {
  const v = env.BASM_LOCAL_FUNCTION_TIMEOUT_SECONDS?.trim();
  if (!v) return functionTimeoutSeconds() * 1000;
  if (!/^\d{1,6}$/.test(v) || Number(v) < 1) {
    throw new MirrorError(
      'CONFIG_INVALID',
      'Setting BASM_LOCAL_FUNCTION_TIMEOUT_SECONDS is invalid: expected whole seconds ≥ 1',
    );
  }
  return Number(v) * 1000;
}

function storageQueue(config: Config, connection: string, name: string): QueueClient {
  if (connection !== 'AzureWebJobsStorage') {
    throw new MirrorError(
      'CONFIG_INVALID',
      `queue connection "${connection}" is not supported by the local host`,
    );
  }
  return queueClient(config, () => createAzureCredential(config), name);
}

function describeFunction(f: FunctionRegistration, url: string, timers: Map<string, TimerRunner>): string {
  switch (f.kind) {
    case 'http':
      return `${f.name}: [${f.methods.join(',')}] ${url}/api/${f.route}`;
    case 'queue':
      return `${f.name}: queueTrigger (${f.queueName})`;
    case 'timer':
      return `${f.name}: timerTrigger (${timers.get(f.name)?.schedule ?? f.schedule}, next ${timers.get(f.name)?.next()?.toISOString() ?? '-'})`;
  }
}

export async function startLocalHost(opts: LocalHostOptions): Promise<LocalHost> {
  const env = opts.env ?? process.env;
  const sink = opts.sink ?? stdoutSink;
  const log: Logger = createLogger(sink, { component: 'host' });
  const config = loadConfig(env);
  const settings: QueueSettings = { ...readQueueSettings(), ...localOverrides(env), ...opts.queueSettings };
  const lockSeconds = messageLockSeconds(env) ?? HOST_MESSAGE_LOCK_SECONDS;
  const timeoutMs = functionTimeoutMs(env);

  let registered: FunctionRegistration[];
  let backend: InvocationBackend;
  let worker: WorkerProcess | undefined;
  if (opts.worker === 'process') {
    const started = await WorkerProcess.start({ env: { ...env }, functionTimeoutMs: timeoutMs, log });
    worker = started.worker;
    registered = started.functions;
    backend = worker.backend;
  } else {
    const app = await loadApp();
    registered = app.functions;
    backend = inProcessBackend(app.core);
  }
  const invoker = createInvoker(log, sink, backend);
  const kinds = opts.kinds ?? ['http', 'queue', 'timer'];

  const timers = new Map<string, TimerRunner>();
  const notIndexed = new Set<string>();
  for (const f of registered) {
    if (f.kind !== 'timer' || !kinds.includes('timer')) continue;
    try {
      // App settings only, as the host resolves them: an app default does not count.
      const schedule = resolveSettingRefs(f.schedule, (name) => env[name]);
      timers.set(f.name, new TimerRunner(f, schedule, invoker, log));
    } catch (e) {
      // The host indexes the other functions and leaves this one out, saying why.
      notIndexed.add(f.name);
      log.error('function.not-indexed', {
        function: f.name,
        error: toErrorInfo(e),
        hint: 'set it in local.settings.json (copy local.settings.json.example) or the environment',
      });
    }
  }
  const functions = registered.filter((f) => kinds.includes(f.kind) && !notIndexed.has(f.name));
  const pollers = functions
    .filter((f) => f.kind === 'queue')
    .map((f) => {
      const poisonName = poisonQueueName(f.queueName);
      return new QueuePoller({
        fn: f,
        queue: storageQueue(config, f.connection, f.queueName),
        poison: poisonName === undefined ? undefined : storageQueue(config, f.connection, poisonName),
        settings,
        invoker,
        log,
        leaseSeconds: lockSeconds,
        ...(opts.minPollingIntervalMs === undefined
          ? {}
          : { minPollingIntervalMs: opts.minPollingIntervalMs }),
      });
    });

  const server = createHttpServer({ functions, timers, invoker, log });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.hostname ?? '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (e) {
    // A port already taken: the worker process started for nothing must not outlive the start.
    await worker?.close();
    throw e;
  }
  const addr = server.address() as AddressInfo;
  const url = `http://${opts.hostname ?? '127.0.0.1'}:${addr.port}`;
  try {
    await Promise.all(pollers.map((p) => p.start()));
  } catch (e) {
    server.close();
    await worker?.close();
    throw e;
  }
  for (const t of timers.values()) t.start();
  log.info('host.started', {
    url,
    functions: functions.map((f) => f.name),
    queues: { ...settings, messageLockSeconds: lockSeconds },
    functionTimeoutSeconds: timeoutMs / 1000,
    worker: worker ? 'process' : 'in-process',
  });

  let closing: Promise<void> | undefined;
  const close = async () => {
    log.info('host.stopping', { running: invoker.running });
    for (const t of timers.values()) t.stop();
    const limit = opts.drainLimitMs ?? DEFAULT_DRAIN_MS;
    const polled = await Promise.all(pollers.map((p) => p.stop(limit)));
    const drained = await invoker.drain(limit);
    await worker?.close();
    server.closeIdleConnections();
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      // Keep-alive clients mid-request would hold the server open: end them after the drain.
      setTimeout(() => server.closeAllConnections(), 1000).unref();
    });
    log.info('host.stopped', { clean: drained && polled.every(Boolean), abandoned: invoker.running });
  };
  return {
    url,
    functions,
    describe: () => functions.map((f) => describeFunction(f, url, timers)),
    close: () => (closing ??= close()),
  };
}
