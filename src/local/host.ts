/**
 * The local stand-in for the Functions host: serves what the function files register (HTTP routes,
 * queue triggers, timers) with host.json's queue settings, plus the admin route. Every event is one
 * structured JSON line.
 */
import type { AddressInfo } from 'node:net';
import type { QueueClient } from '@azure/storage-queue';
import { queueClient } from '../lib/azure/storage-clients';
import { loadConfig, type Config, type Env } from '../lib/config/config';
import { createAzureCredential } from '../lib/azure/credential';
import { MirrorError } from '../lib/core/errors';
import { createLogger, stdoutSink, type Logger, type LogSink } from '../lib/core/log';
import { readQueueSettings, type QueueSettings } from './host-settings';
import { createHttpServer } from './http-server';
import { createInvoker } from './invoke';
import { QueuePoller } from './queue-poller';
import { loadFunctions, type FunctionRegistration } from './registry';
import { resolveSettingRefs, TimerRunner } from './timer';

export interface LocalHostOptions {
  port: number;
  /** 127.0.0.1 unless told otherwise: the host asks for no key. */
  hostname?: string;
  /** App settings (resolves `%NAME%` references, local overrides); the process environment by default. */
  env?: Env;
  /** Where log lines go; stdout by default. */
  sink?: LogSink;
  /** The functions to serve; those the function files register by default. */
  functions?: FunctionRegistration[];
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

/** How long a received message stays invisible while its handler runs (renewed); 60 s by default. */
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
  const functions = opts.functions ?? (await loadFunctions());
  const lockSeconds = messageLockSeconds(env);
  const invoker = createInvoker(log, sink);

  const timers = new Map<string, TimerRunner>();
  for (const f of functions) {
    if (f.kind !== 'timer') continue;
    // The default of a setting the app documents (BASM_SCHEDULE) counts as set, as config.ts defines it.
    const lookup = (name: string) =>
      env[name]?.trim() || (name === 'BASM_SCHEDULE' ? config.schedule : undefined);
    timers.set(f.name, new TimerRunner(f, resolveSettingRefs(f.schedule, lookup), invoker, log));
  }
  const pollers = functions
    .filter((f) => f.kind === 'queue')
    .map(
      (f) =>
        new QueuePoller({
          fn: f,
          queue: storageQueue(config, f.connection, f.queueName),
          poison: storageQueue(config, f.connection, `${f.queueName}-poison`),
          settings,
          invoker,
          log,
          ...(lockSeconds === undefined ? {} : { leaseSeconds: lockSeconds }),
          ...(opts.minPollingIntervalMs === undefined
            ? {}
            : { minPollingIntervalMs: opts.minPollingIntervalMs }),
        }),
    );

  const server = createHttpServer({ functions, timers, invoker, log });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.hostname ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const url = `http://${opts.hostname ?? '127.0.0.1'}:${addr.port}`;
  try {
    await Promise.all(pollers.map((p) => p.start()));
  } catch (e) {
    server.close();
    throw e;
  }
  for (const t of timers.values()) t.start();
  log.info('host.started', {
    url,
    functions: functions.map((f) => f.name),
    queues: settings,
  });

  let closing: Promise<void> | undefined;
  const close = async () => {
    log.info('host.stopping', { running: invoker.running });
    for (const t of timers.values()) t.stop();
    const limit = opts.drainLimitMs ?? DEFAULT_DRAIN_MS;
    const polled = await Promise.all(pollers.map((p) => p.stop(limit)));
    const drained = await invoker.drain(limit);
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
