/**
 * Queue triggers, polled the way the Functions host polls: receive a batch, keep each message
 * invisible while its handler runs, delete it on success; on failure make it visible again after
 * host.json's visibilityTimeout, or move it to `<queue>-poison` once it was dequeued
 * maxDequeueCount times. An idle queue is polled less and less often, up to maxPollingInterval.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { TriggerMetadata } from '@azure/functions';
import type { DequeuedMessageItem, QueueClient } from '@azure/storage-queue';
import { toErrorInfo } from '../lib/core/errors';
import type { Logger } from '../lib/core/log';
import type { QueueSettings } from './host-settings';
import type { Invoker } from './invoke';
import type { QueueFunction } from './registry';

export interface QueuePollerOptions {
  fn: QueueFunction;
  queue: QueueClient;
  poison: QueueClient;
  settings: QueueSettings;
  invoker: Invoker;
  log: Logger;
  /** First wait after an empty poll; doubles up to settings.maxPollingIntervalMs. */
  minPollingIntervalMs?: number;
  /** How long a received message stays invisible; renewed at half of it while the handler runs. */
  leaseSeconds?: number;
}

const DEFAULT_MIN_POLL_MS = 100;
const DEFAULT_LEASE_SECONDS = 60;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The host decodes with base64 (host.json messageEncoding) and refuses text that is not base64. */
export function decodeMessage(text: string, encoding: QueueSettings['messageEncoding']): string {
  if (encoding === 'none') return text;
  const compact = text.replace(/\s+/g, '');
  if (compact.length % 4 !== 0 || !BASE64.test(compact)) {
    throw new Error('the message is not valid base64 (host.json messageEncoding is base64)');
  }
  return Buffer.from(compact, 'base64').toString('utf8');
}

/** What the Node worker hands a queue handler: a parsed object for JSON text, the string otherwise. */
export function triggerInput(text: string): unknown {
  const t = text.trim();
  if (t.startsWith('{') || t.startsWith('[')) {
    try {
      return JSON.parse(t);
    } catch {
      return text;
    }
  }
  return text;
}

export class QueuePoller {
  private stopping = false;
  private wake: AbortController | undefined;
  private loop: Promise<void> | undefined;
  private readonly minPollMs: number;
  private readonly leaseSeconds: number;
  private readonly log: Logger;

  constructor(private readonly o: QueuePollerOptions) {
    this.minPollMs = o.minPollingIntervalMs ?? DEFAULT_MIN_POLL_MS;
    this.leaseSeconds = o.leaseSeconds ?? DEFAULT_LEASE_SECONDS;
    this.log = o.log.child({ function: o.fn.name, queue: o.fn.queueName });
  }

  async start(): Promise<void> {
    await this.o.queue.createIfNotExists();
    this.loop = this.run();
  }

  /**
   * Stops polling and waits up to `limitMs` for the batch in hand. A message whose handler is still
   * running after that stays invisible until its lease ends, then is delivered again, as after a crash.
   */
  async stop(limitMs: number): Promise<boolean> {
    this.stopping = true;
    this.wake?.abort();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), limitMs)));
    const done = await Promise.race([(this.loop ?? Promise.resolve()).then(() => true), timeout]);
    clearTimeout(timer);
    return done;
  }

  private async run(): Promise<void> {
    let delay = this.minPollMs;
    while (!this.stopping) {
      let batch: DequeuedMessageItem[] = [];
      try {
        const r = await this.o.queue.receiveMessages({
          numberOfMessages: this.o.settings.batchSize,
          visibilityTimeout: this.leaseSeconds,
        });
        batch = r.receivedMessageItems;
      } catch (e) {
        this.log.warn('queue.receive-failed', { error: toErrorInfo(e) });
      }
      if (batch.length > 0) {
        delay = this.minPollMs;
        await Promise.all(batch.map((m) => this.process(m)));
        continue;
      }
      await this.idle(delay);
      delay = Math.min(delay * 2, Math.max(this.minPollMs, this.o.settings.maxPollingIntervalMs));
    }
  }

  private async idle(ms: number): Promise<void> {
    this.wake = new AbortController();
    await sleep(ms, undefined, { signal: this.wake.signal }).catch(() => undefined);
    this.wake = undefined;
  }

  private async process(m: DequeuedMessageItem): Promise<void> {
    const { fn, settings } = this.o;
    const mlog = this.log.child({ messageId: m.messageId, dequeueCount: m.dequeueCount });
    let popReceipt = m.popReceipt;
    let nextVisibleOn = m.nextVisibleOn;
    // Keeps the message invisible while the handler runs; each update hands back a new pop receipt.
    let renewing: Promise<void> = Promise.resolve();
    const renewEvery = Math.max(1, Math.floor(this.leaseSeconds / 2)) * 1000;
    const timer = setInterval(() => {
      renewing = renewing.then(async () => {
        try {
          const r = await this.o.queue.updateMessage(m.messageId, popReceipt, undefined, this.leaseSeconds);
          popReceipt = r.popReceipt ?? popReceipt;
          nextVisibleOn = r.nextVisibleOn ?? nextVisibleOn;
        } catch (e) {
          mlog.warn('queue.renew-failed', { error: toErrorInfo(e) });
        }
      });
    }, renewEvery);
    let failure: unknown;
    try {
      const text = decodeMessage(m.messageText, settings.messageEncoding);
      const meta: TriggerMetadata = {
        id: m.messageId,
        queueTrigger: text,
        dequeueCount: m.dequeueCount,
        insertionTime: m.insertedOn.toISOString(),
        expirationTime: m.expiresOn.toISOString(),
        nextVisibleTime: nextVisibleOn.toISOString(),
        popReceipt,
      };
      await this.o.invoker.run(fn.name, `queue ${fn.queueName}`, meta, (ctx) =>
        fn.handler(triggerInput(text), ctx),
      );
    } catch (e) {
      failure = e;
    } finally {
      clearInterval(timer);
      await renewing;
    }
    try {
      if (failure === undefined) {
        await this.o.queue.deleteMessage(m.messageId, popReceipt);
      } else if (m.dequeueCount >= settings.maxDequeueCount) {
        await this.o.poison.createIfNotExists();
        // The original text, still encoded, as the host moves it.
        await this.o.poison.sendMessage(m.messageText);
        await this.o.queue.deleteMessage(m.messageId, popReceipt);
        mlog.error('queue.poisoned', { poisonQueue: this.o.poison.name, error: toErrorInfo(failure) });
      } else {
        const retryIn = Math.ceil(settings.visibilityTimeoutMs / 1000);
        await this.o.queue.updateMessage(m.messageId, popReceipt, undefined, retryIn);
        mlog.warn('queue.retry', { retryInSeconds: retryIn, maxDequeueCount: settings.maxDequeueCount });
      }
    } catch (e) {
      // The message reappears when its invisibility ends and is handled again: what the host does too.
      mlog.error('queue.settle-failed', { error: toErrorInfo(e) });
    }
  }
}
