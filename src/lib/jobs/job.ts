/**
 * The job record: one per (series, version), plain data, and the rules every part of the app applies
 * to it (which statuses are final, when a new request starts a finished job again). The store
 * (store.ts) keeps it; the runner (mirror/) advances it.
 */
import type { ErrorCode } from '../core/errors';
import { toGalleryVersion } from '../core/names';

export const JOB_STATUSES = [
  'queued',
  'running',
  'waiting',
  'succeeded',
  'skipped',
  'staged',
  'failed',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];
export const TERMINAL: ReadonlySet<JobStatus> = new Set(['succeeded', 'skipped', 'staged', 'failed']);

export type JobStage =
  'queued' | 'resolve' | 'check' | 'transfer' | 'publish' | 'replicate' | 'notify' | 'cleanup' | 'done';

export type NotifyState = 'off' | 'pending' | 'sending' | 'sent' | 'failed';

/** Everything the pipeline keeps between invocations. Plain data; `etag` is the row's version. */
export interface Job {
  series: string;
  version: string;
  galleryVersion: string;
  status: JobStatus;
  stage: JobStage;
  attempts: number;
  force: boolean;
  reason: string | undefined;
  // resolved release
  downloadUrl: string | undefined;
  downloadTotalBytes: number | undefined;
  archiveSha256: string | undefined;
  archiveSha1: string | undefined;
  // transfer progress (the checkpoint)
  downloadedBytes: number;
  vhdBytes: number | undefined;
  uploadedBytes: number;
  skippedZeroBytes: number;
  watermark: number;
  passes: number;
  /** Bytes sent by Put Page over all passes; above the VHD's non-zero bytes only by re-uploads. */
  sentBytes: number;
  blobName: string | undefined;
  // verified content
  imageSha256: string | undefined;
  imageSha1: string | undefined;
  /** stemcell.MF cloud_properties as JSON (small). */
  cloudProperties: string | undefined;
  // publishing
  definitionName: string | undefined;
  pollerState: string | undefined;
  galleryImageVersionId: string | undefined;
  // notification
  notify: NotifyState;
  notifyError: string | undefined;
  // outcome
  errorCode: ErrorCode | undefined;
  errorMessage: string | undefined;
  errorPermanent: boolean;
  leaseOwner: string | undefined;
  leaseUntil: string | undefined;
  createdAt: string;
  updatedAt: string;
  etag: string;
}

export function newJob(series: string, version: string, now = new Date()): Omit<Job, 'etag'> {
  const at = now.toISOString();
  return {
    series,
    version,
    galleryVersion: toGalleryVersion(version),
    status: 'queued',
    stage: 'queued',
    attempts: 0,
    force: false,
    reason: undefined,
    downloadUrl: undefined,
    downloadTotalBytes: undefined,
    archiveSha256: undefined,
    archiveSha1: undefined,
    downloadedBytes: 0,
    vhdBytes: undefined,
    uploadedBytes: 0,
    skippedZeroBytes: 0,
    watermark: 0,
    passes: 0,
    sentBytes: 0,
    blobName: undefined,
    imageSha256: undefined,
    imageSha1: undefined,
    cloudProperties: undefined,
    definitionName: undefined,
    pollerState: undefined,
    galleryImageVersionId: undefined,
    notify: 'off',
    notifyError: undefined,
    errorCode: undefined,
    errorMessage: undefined,
    errorPermanent: false,
    leaseOwner: undefined,
    leaseUntil: undefined,
    createdAt: at,
    updatedAt: at,
  };
}

/**
 * Fields that start a job again: progress is kept (the staged blob's page ranges tell what is really
 * there), the outcome, the gallery operation, the notification and the lease are cleared.
 */
export function rearmFields(): Partial<Job> {
  return {
    status: 'queued',
    stage: 'queued',
    errorCode: undefined,
    errorMessage: undefined,
    errorPermanent: false,
    pollerState: undefined,
    galleryImageVersionId: undefined,
    notify: 'off',
    notifyError: undefined,
    leaseOwner: undefined,
    leaseUntil: undefined,
  };
}

/**
 * Whether a new request starts `job` again. A job never goes back on its own (a repeated delivery
 * leaves a finished job as it is, and a continuation only advances one); a new request re-arms a
 * job that failed transiently, and with `force` one that failed for good. A request accepted by
 * POST /api/mirror or the CLI re-arms before it enqueues, so there `force` also starts a job that
 * succeeded, was skipped or staged: that is what forcing a version means.
 */
export function shouldRearm(
  job: Pick<Job, 'status' | 'errorPermanent'>,
  request: { force?: boolean; continuation?: boolean },
  via: 'accepted' | 'delivered',
): boolean {
  if (!TERMINAL.has(job.status) || request.continuation) return false;
  const force = request.force === true;
  if (job.status === 'failed') return force || !job.errorPermanent;
  return force && via === 'accepted';
}

/** What a watchdog message does when it arrives (DESIGN §2, "Watchdog"). */
export type WatchdogVerdict =
  { kind: 'defer'; delaySeconds: number } | { kind: 'take-over' } | { kind: 'drop'; why: string };

/**
 * A watchdog follows one run (its lease owner, `watched`). While that run holds a live lease the
 * watchdog comes back `graceSeconds` after the lease would expire; when the lease has expired on a
 * job still `running`, the run died without a word (a whole instance lost: the host releases
 * nothing for 10 minutes) and the watchdog takes the job over. Anything else means the run ended or
 * another run holds the job (with a watchdog of its own): the watchdog has nothing left to do.
 *
 * A watchdog takes over on its first delivery only (`dequeueCount` 1, as the host counts):
 * delivered again, its own take-over died or failed, and the run's own message, which the host
 * counts toward the poison queue, carries the job on. It may defer on any delivery: one that
 * failed to send its next look is simply delivered again. Nor does a take-over send a watchdog: a job that kills
 * every process that runs it costs at most one take-over per delivery of its message, and still
 * ends in the poison queue.
 */
export function watchdogVerdict(
  job: Pick<Job, 'status' | 'leaseOwner' | 'leaseUntil'>,
  watched: string,
  now: Date,
  graceSeconds: number,
  dequeueCount = 1,
): WatchdogVerdict {
  if (TERMINAL.has(job.status)) return { kind: 'drop', why: `job is ${job.status}` };
  const remainingMs = job.leaseUntil === undefined ? 0 : Date.parse(job.leaseUntil) - now.getTime();
  if (remainingMs > 0) {
    if (job.leaseOwner !== watched) return { kind: 'drop', why: 'another run holds the job' };
    return { kind: 'defer', delaySeconds: Math.ceil(remainingMs / 1000) + graceSeconds };
  }
  if (job.status !== 'running')
    return { kind: 'drop', why: `the watched run ended with the job ${job.status}` };
  if (dequeueCount > 1) {
    return {
      kind: 'drop',
      why: `delivered ${dequeueCount} times: a watchdog takes over on its first delivery only`,
    };
  }
  return { kind: 'take-over' };
}
