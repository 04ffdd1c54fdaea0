/** Sends mirror requests to the worker queue, base64-encoded as the Functions host expects. */
import type { QueueClient } from '@azure/storage-queue';
import { encodeQueueMessage, type QueueMessage } from './requests';

/** The queue service's limit on initial invisibility. */
const MAX_DELAY_SECONDS = 7 * 24 * 3600;

/** Where the pipeline sends its continuations: the worker queue, or the CLI's own loop. */
export interface RequestSender {
  send(message: QueueMessage, delaySeconds?: number): Promise<void>;
}

export class RequestQueue implements RequestSender {
  private ready: Promise<unknown> | undefined;

  constructor(private readonly queue: QueueClient) {}

  private ensure(): Promise<unknown> {
    this.ready ??= this.queue.createIfNotExists().catch((e: unknown) => {
      this.ready = undefined;
      throw e;
    });
    return this.ready;
  }

  /** Enqueues `message`, invisible for `delaySeconds` (a continuation or a lease wait). */
  async send(message: QueueMessage, delaySeconds = 0): Promise<void> {
    await this.ensure();
    const delay = Math.min(Math.max(0, Math.ceil(delaySeconds)), MAX_DELAY_SECONDS);
    await this.queue.sendMessage(encodeQueueMessage(message), delay > 0 ? { visibilityTimeout: delay } : {});
  }
}
