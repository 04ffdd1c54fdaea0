/** What happens to a request the host gave up on after maxDequeueCount deliveries. */
import { TERMINAL } from '../jobs/job';
import { notifyFailure } from './notify';
import type { PipelineDeps } from './stage';
import type { QueueMessage } from '../jobs/requests';

export async function failPoisoned(
  message: QueueMessage,
  deps: Pick<PipelineDeps, 'jobs' | 'boshio' | 'notifier' | 'config' | 'log'>,
): Promise<void> {
  const { log } = deps;
  const version =
    message.version === 'latest'
      ? await deps.boshio.resolve(message.series, 'latest').then(
          (r) => r.version,
          () => undefined,
        )
      : message.version;
  const job = version === undefined ? undefined : await deps.jobs.get(message.series, version);
  if (!job) {
    log.error('poison.no-job', { message });
    return;
  }
  if (TERMINAL.has(job.status)) {
    log.info('poison.already-done', { status: job.status });
    return;
  }
  if (job.stage === 'notify' || job.stage === 'cleanup') {
    // Published already: what is left never un-publishes. The next request for it finishes the job.
    log.warn('poison.after-publish', { stage: job.stage, galleryImageVersionId: job.galleryImageVersionId });
    return;
  }
  const failed = await deps.jobs.release(job, {
    status: 'failed',
    errorCode: job.errorCode ?? 'POISONED',
    errorMessage: `gave up after repeated failures: ${job.errorMessage ?? 'the worker failed on every delivery'}`,
    errorPermanent: false,
  });
  log.error('job.failed', {
    stage: failed.stage,
    error: { code: failed.errorCode, message: failed.errorMessage },
  });
  await notifyFailure(failed, deps);
}
