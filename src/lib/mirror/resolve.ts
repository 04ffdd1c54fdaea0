/** Stage resolve: bosh.io's download URL, size and checksums for the job's version. */
import type { StageResult, StageRun } from './stage';

export async function resolveStage(run: StageRun): Promise<StageResult> {
  const r = await run.deps.boshio.resolve(run.job.series, run.job.version);
  await run.save({
    stage: 'check',
    downloadUrl: r.url,
    downloadTotalBytes: r.size,
    archiveSha256: r.sha256,
    archiveSha1: r.sha1,
  });
  return undefined;
}
