/**
 * host.json's queue settings (extensions.queues), read the way the Functions host reads them, with
 * the host's own defaults for anything left out.
 */
import { MirrorError } from '../lib/core/errors';
import { parseTimeSpan, readHostJson } from '../lib/config/host-json';

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

/** The queue settings of the app's host.json (the nearest above `startDir`), or the host's defaults. */
export function readQueueSettings(startDir: string = __dirname): QueueSettings {
  const hostJson = readHostJson(startDir);
  return hostJson === undefined ? HOST_QUEUE_DEFAULTS : parseQueueSettings(hostJson);
}
