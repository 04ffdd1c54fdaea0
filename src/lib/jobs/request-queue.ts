/** Sends mirror requests to the worker queue, base64-encoded as the Functions host expects. */
import type { QueueClient } from '@azure/storage-queue';
import { hasStatus, storageError } from '../core/azure-errors';
import { onceUntilFailure } from '../core/once';
import { encodeQueueMessage, type QueueMessage } from './requests';

/** The queue service's limit on initial invisibility. */
const MAX_DELAY_SECONDS = 7 * 24 * 3600;

/** Where the pipeline sends its continuations: the worker queue, or the CLI's own loop. */
export interface RequestSender {
  send(message: QueueMessage, delaySeconds?: number): Promise<void>;
}

export class RequestQueue implements RequestSender {
  private readonly ensure: () => Promise<unknown>;

  constructor(private readonly queue: QueueClient) {
    // In Azure the deployment creates the queue and the app's role covers that queue only: a 403 on
    // creating it means it exists.
    this.ensure = onceUntilFailure(() =>
      this.queue.createIfNotExists().catch((e: unknown) => {
        if (!hasStatus(e, 403)) throw storageError(e, `Creating queue ${this.queue.name} failed`);
      }),
    );
  }

  /** Enqueues `message`, invisible for `delaySeconds` (a continuation or a lease wait). */
  async send(message: QueueMessage, delaySeconds = 0): Promise<void> {
    await this.ensure();
    const delay = Math.min(Math.max(0, Math.ceil(delaySeconds)), MAX_DELAY_SECONDS);
    try {
      await this.queue.sendMessage(
        encodeQueueMessage(message),
        delay > 0 ? { visibilityTimeout: delay } : {},
      );
    } catch (e) {
      throw storageError(e, `Sending a message to queue ${this.queue.name} failed`);
    }
  }
}
