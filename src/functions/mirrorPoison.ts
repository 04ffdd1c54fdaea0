/** Poison queue trigger: a request failed on every delivery; mark its job failed and tell downstream. */
import { app, type InvocationContext } from '@azure/functions';
import { toErrorInfo } from '../lib/core/errors';
import { POISON_QUEUE } from '../lib/azure/storage-clients';
import { failPoisoned } from '../lib/mirror/poison';
import { parseQueueMessage } from '../lib/jobs/requests';
import { inInvocation, services } from './runtime';

export async function mirrorPoison(message: unknown, context: InvocationContext): Promise<void> {
  return inInvocation(context, {}, async (log) => {
    let request;
    try {
      request = parseQueueMessage(message);
    } catch (e) {
      log.error('poison.bad-message', { error: toErrorInfo(e) });
      return;
    }
    await failPoisoned(request, {
      ...services(log),
      log: log.child({ series: request.series, version: request.version }),
    });
  });
}

app.storageQueue('mirrorPoison', {
  queueName: POISON_QUEUE,
  connection: 'AzureWebJobsStorage',
  handler: mirrorPoison,
});
