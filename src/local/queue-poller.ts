/**
 * Queue triggers, polled the way the Functions host's queue listener polls (Storage Queues
 * extension 5.x, `QueueListener` / `QueueProcessor`): receive a batch, keep each message invisible
 * while its function runs (10 minutes, renewed), delete it on success; on failure make it visible
 * again after host.json's visibilityTimeout, or move it to `<queue>-poison` once it was dequeued
 * maxDequeueCount times. Before any invocation, a message that is not valid base64, or whose
 * dequeue count is already above maxDequeueCount (its invocations kept crashing the process), goes
 * to the poison queue uninvoked. A queue whose name ends in `-poison` has no poison queue: its
 * failing messages are not released (they come back when the receive invisibility ends) and past
 * the maximum they are left alone. An idle queue is polled less and less often, up to
 * maxPollingInterval.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { DequeuedMessageItem, QueueClient } from '@azure/storage-queue';
import { MirrorError, toErrorInfo } from '../lib/core/errors';
import type { Logger } from '../lib/core/log';
import type { QueueSettings } from './host-settings';
import type { Invoker } from './invoke';
import type { QueueFunction } from './registry';
import { queueInvocation } from './rpc-shapes';

export interface QueuePollerOptions {
  fn: QueueFunction;
  queue: QueueClient;
  /** `<queue>-poison`; none for a queue whose own name ends in `-poison`. */
  poison: QueueClient | undefined;
  settings: QueueSettings;
  invoker: Invoker;
  log: Logger;
  /** First wait after an empty poll; doubles up to settings.maxPollingIntervalMs. */
  minPollingIntervalMs?: number;
  /** How long a received message stays invisible; renewed at half of it while the function runs. */
  leaseSeconds?: number;
}

const DEFAULT_MIN_POLL_MS = 100;
/** The host's receive invisibility for a queue message: 10 minutes (QueueListener). */
export const HOST_MESSAGE_LOCK_SECONDS = 600;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** The poison queue the host uses for `queueName`, or undefined when it has none (`…-poison`). */
export function poisonQueueName(queueName: string): string | undefined {
  return queueName.toLowerCase().endsWith('-poison') ? undefined : `${queueName}-poison`;
}

/**
 * The host decodes with base64 (host.json messageEncoding) and refuses text that is not base64:
 * `INVALID_REQUEST`, and the message is poisoned uninvoked.
 */
export function decodeMessage(text: string, encoding: QueueSettings['messageEncoding']): string {
  if (encoding === 'none') return text;
  const compact = text.replace(/\s+/g, '');
  if (compact.length % 4 !== 0 || !BASE64.test(compact)) {
    throw new MirrorError(
      'INVALID_REQUEST',
      'the message is not valid base64 (host.json extensions.queues.messageEncoding is base64): enqueue the base64 of the JSON text',
    );
  }
  return Buffer.from(compact, 'base64').toString('utf8');
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
    this.leaseSeconds = o.leaseSeconds ?? HOST_MESSAGE_LOCK_SECONDS;
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
    let text: string | undefined;
    let refusal: string | undefined;
    if (m.dequeueCount > settings.maxDequeueCount) {
      refusal = `dequeued ${m.dequeueCount} times, more than maxDequeueCount ${settings.maxDequeueCount}, before it could complete`;
    } else {
      try {
        text = decodeMessage(m.messageText, settings.messageEncoding);
      } catch (e) {
        refusal = toErrorInfo(e).message;
      }
    }
    if (refusal !== undefined || text === undefined) {
      await this.refuse(m, m.popReceipt, refusal ?? 'unreadable', mlog);
      return;
    }
    let popReceipt = m.popReceipt;
    let nextVisibleOn = m.nextVisibleOn;
    // Keeps the message invisible while the function runs; each update hands back a new pop receipt.
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
      const input = queueInvocation(fn.triggerBinding, {
        text,
        dequeueCount: m.dequeueCount,
        id: m.messageId,
        popReceipt,
        insertedOn: m.insertedOn,
        expiresOn: m.expiresOn,
        nextVisibleOn,
      });
      await this.o.invoker.run(fn.name, `queue ${fn.queueName}`, input);
    } catch (e) {
      failure = e;
    } finally {
      clearInterval(timer);
      await renewing;
    }
    try {
      if (failure === undefined) {
        await this.o.queue.deleteMessage(m.messageId, popReceipt);
      } else if (!this.o.poison) {
        // No poison queue: the message is not released; it comes back when its invisibility ends.
        mlog.warn('queue.not-released', {
          reason: 'a -poison queue has no poison queue',
          visibleAgain: nextVisibleOn.toISOString(),
        });
      } else if (m.dequeueCount >= settings.maxDequeueCount) {
        await this.moveToPoison(m, popReceipt);
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

  /** The original text, still encoded, as the host copies it; then the original is deleted. */
  private async moveToPoison(m: DequeuedMessageItem, popReceipt: string): Promise<void> {
    const poison = this.o.poison!;
    await poison.createIfNotExists();
    await poison.sendMessage(m.messageText);
    await this.o.queue.deleteMessage(m.messageId, popReceipt);
  }

  /** A message the host does not invoke: poisoned at once, or left alone where there is no poison queue. */
  private async refuse(
    m: DequeuedMessageItem,
    popReceipt: string,
    reason: string,
    mlog: Logger,
  ): Promise<void> {
    if (!this.o.poison) {
      mlog.warn('queue.left-alone', {
        reason,
        visibleAgain: m.nextVisibleOn.toISOString(),
      });
      return;
    }
    try {
      await this.moveToPoison(m, popReceipt);
      mlog.error('queue.poisoned', { poisonQueue: this.o.poison.name, uninvoked: true, reason });
    } catch (e) {
      mlog.error('queue.settle-failed', { error: toErrorInfo(e) });
    }
  }
}
