/** The public JSON of a job (DESIGN §3): what the status route, the CLI and POST /api/mirror show. */
import type { Job } from './job';

/** The public JSON of a job (DESIGN §3), with a percentage for people. */
export function jobView(job: Job): Record<string, unknown> {
  const pct =
    job.status === 'succeeded' || job.status === 'staged' || job.status === 'skipped'
      ? 100
      : job.vhdBytes
        ? Math.min(99, Math.floor((job.watermark / job.vhdBytes) * 100))
        : 0;
  return {
    series: job.series,
    version: job.version,
    galleryVersion: job.galleryVersion,
    status: job.status,
    stage: job.stage,
    attempts: job.attempts,
    progress: {
      downloadedBytes: job.downloadedBytes,
      downloadTotalBytes: job.downloadTotalBytes ?? 0,
      vhdBytes: job.vhdBytes ?? 0,
      uploadedBytes: job.uploadedBytes,
      skippedZeroBytes: job.skippedZeroBytes,
      percent: pct,
    },
    ...(job.galleryImageVersionId ? { galleryImageVersionId: job.galleryImageVersionId } : {}),
    ...(job.errorCode ? { error: { code: job.errorCode, message: job.errorMessage ?? '' } } : {}),
    notification: { status: job.notify, ...(job.notifyError ? { error: job.notifyError } : {}) },
    createdAt: job.createdAt,
    updatedAt: job.updatedAt,
  };
}
