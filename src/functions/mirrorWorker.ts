/** Queue trigger: runs or advances one mirror job within this invocation's time budget. */
import { app, type InvocationContext } from '@azure/functions';
import { invocationBudget } from '../lib/core/budget';
import { isMirrorError, toErrorInfo } from '../lib/core/errors';
import { REQUEST_QUEUE } from '../lib/azure/storage-clients';
import { runMirror } from '../lib/mirror/runner';
import { parseQueueMessage } from '../lib/jobs/requests';
import { inInvocation, services } from './runtime';

export async function mirrorWorker(message: unknown, context: InvocationContext): Promise<void> {
  const dequeueCount = Number(context.triggerMetadata?.dequeueCount ?? 1);
  return inInvocation(context, { dequeueCount }, async (log) => {
    let request;
    try {
      request = parseQueueMessage(message);
    } catch (e) {
      // A message that can never be understood is not retried: say why and drop it.
      log.error('worker.bad-message', { error: toErrorInfo(e) });
      return;
    }
    const s = services(log);
    const budget = invocationBudget(s.config.invocationBudgetSeconds * 1000);
    const jlog = log.child({ series: request.series, version: request.version });
    try {
      const outcome = await runMirror(request, { ...s, log: jlog }, { budget, dequeueCount });
      jlog.info('worker.done', { outcome: outcome.kind });
    } catch (e) {
      // Permanent errors were recorded on the job by the pipeline; anything left is for the host's retry.
      if (isMirrorError(e) && e.permanent) {
        jlog.error('worker.failed', { error: toErrorInfo(e) });
        return;
      }
      jlog.warn('worker.retry', { error: toErrorInfo(e) });
      throw e;
    }
  });
}

app.storageQueue('mirrorWorker', {
  queueName: REQUEST_QUEUE,
  connection: 'AzureWebJobsStorage',
  handler: mirrorWorker,
});
