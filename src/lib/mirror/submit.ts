/**
 * Accepting a mirror request (HTTP, CLI): resolve the version against bosh.io, record the job as
 * queued so its status can be read at once, and enqueue it. Nothing is created when bosh.io does
 * not list the version or cannot be reached.
 */
import { closestNames, type StemcellRelease } from '../boshio/client';
import { isMirrorError, MirrorError } from '../core/errors';
import { newJob, rearmFields, shouldRearm, TERMINAL, type Job } from '../jobs/job';
import type { Logger } from '../core/log';
import type { MirrorRequest } from '../jobs/requests';
import type { Services } from './services';

export interface Submitted {
  job: Job;
  /** False when the job was already done and nothing new was asked (no force). */
  enqueued: boolean;
}

/**
 * Azure series bosh.io publishes (it has no API that lists series), to name the closest one when a
 * request has a typo. Any Azure series may still be requested.
 */
export const KNOWN_AZURE_SERIES: readonly string[] = [
  'bosh-azure-hyperv-ubuntu-noble',
  'bosh-azure-hyperv-ubuntu-jammy-go_agent',
  'bosh-azure-hyperv-ubuntu-bionic-go_agent',
  'bosh-azure-hyperv-ubuntu-xenial-go_agent',
];

type SubmitServices = Pick<Services, 'boshio' | 'jobs' | 'queue'> & {
  config: Pick<Services['config'], 'series'>;
};

export async function submitMirrorRequest(
  request: MirrorRequest,
  s: SubmitServices,
  log: Logger,
): Promise<Submitted> {
  const release = await resolveRelease(request, s);
  const force = request.force ?? false;
  const { job: existing, created } = await s.jobs.create({
    ...newJob(release.series, release.version),
    force,
    reason: request.reason,
  });
  let job = existing;
  if (!created && TERMINAL.has(job.status)) {
    if (!shouldRearm(job, { force }, 'accepted')) {
      log.info('request.already-done', { series: job.series, version: job.version, status: job.status });
      return { job, enqueued: false };
    }
    job = await s.jobs.update(job, { ...rearmFields(), force, reason: request.reason ?? job.reason });
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

/** bosh.io's release; for a series it does not list, the error names the closest known series. */
async function resolveRelease(request: MirrorRequest, s: SubmitServices): Promise<StemcellRelease> {
  try {
    return await s.boshio.resolve(request.series, request.version);
  } catch (e) {
    if (!isMirrorError(e) || e.code !== 'NOT_FOUND') throw e;
    // Only on this error path: ask again whether the series itself is unknown (no releases at all).
    if ((await s.boshio.listReleases(request.series)).length > 0) throw e;
    const candidates = [...new Set([...s.config.series, ...KNOWN_AZURE_SERIES])].filter(
      (c) => c !== request.series,
    );
    throw new MirrorError(
      'NOT_FOUND',
      `bosh.io lists no stemcells for series "${request.series}"; closest: ${closestNames(request.series, candidates).join(', ')}`,
    );
  }
}
