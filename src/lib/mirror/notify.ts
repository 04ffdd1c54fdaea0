/**
 * Stage notify, and the failure notice: a GitHub workflow dispatch per published version, at least
 * once, and never able to un-publish.
 */
import { toErrorInfo } from '../core/errors';
import type { Job } from '../jobs/job';
import type { NotifyEvent } from '../notify/github';
import type { PipelineDeps, StageResult, StageRun } from './stage';

export async function notifyStage(run: StageRun): Promise<StageResult> {
  await notifyPublished(run);
  await run.save({ stage: 'cleanup' });
  return undefined;
}

async function notifyPublished(run: StageRun): Promise<void> {
  const n = run.deps.notifier;
  if (!n) {
    await run.save({ notify: 'off' });
    return;
  }
  if (run.job.notify === 'sent') return;
  // 'sending' marks a dispatch that may have left: a crash right after it sends it again (at least once).
  await run.save({ notify: 'sending' });
  const j = run.job;
  const event: NotifyEvent = {
    kind: 'published',
    series: j.series,
    version: j.version,
    ...(run.deps.config.gallery && j.definitionName
      ? {
          galleryImageName: j.definitionName,
          galleryImageVersion: j.galleryVersion,
          ...(j.galleryImageVersionId ? { galleryImageVersionId: j.galleryImageVersionId } : {}),
        }
      : {}),
  };
  try {
    await n.notify(event);
    await run.save({ notify: 'sent', notifyError: undefined });
  } catch (e) {
    // A lost notification never un-publishes: record it and carry on.
    const info = toErrorInfo(e);
    run.log.warn('notify.failed', { error: info });
    await run.save({ notify: 'failed', notifyError: `${info.code}: ${info.message}` });
  }
}

/** Tells downstream that a job failed for good (BASM_NOTIFY_ON_FAILURE). Never throws. */
export async function notifyFailure(
  job: Job,
  deps: Pick<PipelineDeps, 'notifier' | 'config' | 'log'>,
): Promise<void> {
  if (!deps.notifier || !deps.config.notify.onFailure) return;
  // Downstream was told the version is published: a later failure never contradicts that.
  if (job.notify === 'sent') {
    deps.log.warn('notify.failure-after-success', { series: job.series, version: job.version });
    return;
  }
  try {
    await deps.notifier.notify({
      kind: 'failed',
      series: job.series,
      version: job.version,
      error: { code: job.errorCode ?? 'INTERNAL', message: job.errorMessage ?? '' },
    });
  } catch (e) {
    deps.log.warn('notify.failed', { series: job.series, version: job.version, error: toErrorInfo(e) });
  }
}
