/**
 * host.json's queue settings (extensions.queues), read the way the Functions host reads them, with
 * the host's own defaults for anything left out.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { MirrorError } from '../lib/errors';

export interface QueueSettings {
  readonly messageEncoding: 'base64' | 'none';
  readonly batchSize: number;
  readonly maxDequeueCount: number;
  /** Delay before a failed message is visible again. */
  readonly visibilityTimeoutMs: number;
  /** Longest wait between polls of an idle queue. */
  readonly maxPollingIntervalMs: number;
}

/** The Functions host's defaults (queue extension 5.x). */
export const HOST_QUEUE_DEFAULTS: QueueSettings = {
  messageEncoding: 'base64',
  batchSize: 16,
  maxDequeueCount: 5,
  visibilityTimeoutMs: 0,
  maxPollingIntervalMs: 60_000,
};

/** A .NET TimeSpan as host.json writes it: `[d.]hh:mm:ss[.fff]`. */
export function parseTimeSpan(value: string): number {
  const m = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?$/.exec(value.trim());
  if (!m) throw new MirrorError('CONFIG_INVALID', `host.json: "${value}" is not a time span (hh:mm:ss)`);
  const [, d = '0', h = '0', min = '0', s = '0', frac = '0'] = m;
  const ms = Math.round(Number(`0.${frac}`) * 1000);
  return ((Number(d) * 24 + Number(h)) * 60 + Number(min)) * 60_000 + Number(s) * 1000 + ms;
}

function positiveInt(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new MirrorError(
      'CONFIG_INVALID',
      `host.json: extensions.queues.${name} must be a whole number ≥ 1`,
    );
  }
  return value;
}

function timeSpan(value: unknown, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'string') {
    throw new MirrorError(
      'CONFIG_INVALID',
      `host.json: extensions.queues.${name} must be a time span (hh:mm:ss)`,
    );
  }
  return parseTimeSpan(value);
}

export function parseQueueSettings(hostJson: unknown): QueueSettings {
  const queues =
    (hostJson as { extensions?: { queues?: Record<string, unknown> } } | null)?.extensions?.queues ?? {};
  const encoding = queues.messageEncoding ?? HOST_QUEUE_DEFAULTS.messageEncoding;
  if (encoding !== 'base64' && encoding !== 'none') {
    throw new MirrorError(
      'CONFIG_INVALID',
      'host.json: extensions.queues.messageEncoding must be base64 or none',
    );
  }
  const d = HOST_QUEUE_DEFAULTS;
  return {
    messageEncoding: encoding,
    // The host caps a batch at 32, the queue service's limit per receive.
    batchSize: Math.min(32, positiveInt(queues.batchSize, 'batchSize', d.batchSize)),
    maxDequeueCount: positiveInt(queues.maxDequeueCount, 'maxDequeueCount', d.maxDequeueCount),
    visibilityTimeoutMs: timeSpan(queues.visibilityTimeout, 'visibilityTimeout', d.visibilityTimeoutMs),
    maxPollingIntervalMs: timeSpan(queues.maxPollingInterval, 'maxPollingInterval', d.maxPollingIntervalMs),
  };
}

/** The app's host.json: the nearest one above `startDir` (the repository root, from src or dist). */
export function findHostJson(startDir: string = __dirname): string | undefined {
  for (let dir = startDir, i = 0; i < 6; i++, dir = dirname(dir)) {
    const file = join(dir, 'host.json');
    if (existsSync(file)) return file;
  }
  return undefined;
}

export function readQueueSettings(startDir: string = __dirname): QueueSettings {
  const file = findHostJson(startDir);
  if (file === undefined) return HOST_QUEUE_DEFAULTS;
  return parseQueueSettings(JSON.parse(readFileSync(file, 'utf8')));
}
