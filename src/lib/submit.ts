/**
 * Accepting a mirror request (HTTP, CLI): resolve the version against bosh.io, record the job as
 * queued so its status can be read at once, and enqueue it. Nothing is created when bosh.io does
 * not list the version or cannot be reached.
 */
import type { Job } from './jobs';
import { newJob } from './jobs';
import type { Logger } from './log';
import { rearmFields } from './pipeline';
import type { MirrorRequest } from './requests';
import type { Services } from './services';

export interface Submitted {
  job: Job;
  /** False when the job was already done and nothing new was asked (no force). */
  enqueued: boolean;
}

export async function submitMirrorRequest(
  request: MirrorRequest,
  s: Pick<Services, 'boshio' | 'jobs' | 'queue'>,
  log: Logger,
): Promise<Submitted> {
  const release = await s.boshio.resolve(request.series, request.version);
  const force = request.force ?? false;
  const { job: existing, created } = await s.jobs.create({
    ...newJob(release.series, release.version),
    force,
    reason: request.reason,
  });
  let job = existing;
  const done = ['succeeded', 'skipped', 'staged', 'failed'].includes(job.status);
  if (!created && done) {
    if (!force && job.status !== 'failed') {
      log.info('request.already-done', { series: job.series, version: job.version, status: job.status });
      return { job, enqueued: false };
    }
    job = await s.jobs.update(job, { ...rearmFields(job), force, reason: request.reason ?? job.reason });
  }
  await s.queue.send({
    series: job.series,
    version: job.version,
    ...(force ? { force } : {}),
    ...(request.reason ? { reason: request.reason } : {}),
  });
  log.info('request.enqueued', { series: job.series, version: job.version, force, created });
  return { job, enqueued: true };
}
