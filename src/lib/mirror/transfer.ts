/**
 * Stage transfer: one pass of download → extract → page blob → verify (transfer-pass.ts) over the
 * job's staged blob, resumed from what earlier passes left. A pass stopped by the time budget saves
 * its checkpoint and continues in the next invocation; a verified pass hands on to publish, or ends
 * the job `staged` when no gallery is configured.
 */
import { downloadCacheBlobName, stagedVhdBlobName } from '../azure/blob-names';
import { ensureContainer } from '../azure/storage-clients';
import type { StemcellRelease } from '../boshio/client';
import { DownloadCache } from '../boshio/download-cache';
import { isMirrorError, MirrorError, toErrorInfo } from '../core/errors';
import type { Job } from '../jobs/job';
import type { StageResult, StageRun } from './stage';
import { transferStemcell, type TransferCheckpoint, type TransferResult } from './transfer-pass';

export async function transferStage(run: StageRun): Promise<StageResult> {
  const { deps } = run;
  await ensureContainer(deps.container, run.log);
  const blobName = run.job.blobName ?? stagedVhdBlobName(run.job.series, run.job.version);
  const blob = deps.container.getPageBlobClient(blobName);
  const release = releaseOf(run.job);
  // A pass that got as far as the VHD left its size: its blob's pages count, whatever the watermark.
  const resume =
    run.job.vhdBytes !== undefined
      ? {
          watermark: run.job.watermark,
          downloadedBytes: 0,
          uploadedBytes: run.job.uploadedBytes,
          skippedZeroBytes: run.job.skippedZeroBytes,
          vhdBytes: run.job.vhdBytes,
          sentBytes: 0,
        }
      : undefined;
  const sentBefore = run.job.sentBytes;
  const cache = new DownloadCache({
    blob: deps.container.getBlockBlobClient(downloadCacheBlobName(blobName)),
    fetch: (start, signal) => deps.boshio.openDownload(release, { signal, start }),
    size: release.size,
    // 'resume': the first pass of a job keeps nothing, so an uninterrupted mirror pays nothing.
    record:
      deps.config.downloadCache === 'always' ||
      (deps.config.downloadCache === 'resume' && run.job.passes > 0),
    log: run.log,
  });
  const cachedBytes = deps.config.downloadCache === 'off' ? 0 : await cache.load();
  await run.save({ blobName, passes: run.job.passes + 1 });
  run.log.info('transfer.pass', { pass: run.job.passes, cachedBytes, watermark: run.job.watermark });
  const withSent = (cp: TransferCheckpoint): Partial<Job> => ({
    ...progressFields(cp),
    sentBytes: sentBefore + cp.sentBytes,
  });
  let result: TransferResult;
  try {
    result = await transferStemcell({
      source: {
        open: (signal) => cache.open(signal),
        size: release.size,
        sha256: release.sha256,
        sha1: release.sha1,
      },
      blob,
      resume,
      signal: run.budget,
      checkpointBytes: deps.config.checkpointMiB * 1024 * 1024,
      log: run.log,
      onCheckpoint: async (cp) => {
        await cache.commit();
        await run.save(withSent(cp));
      },
      onProgress: deps.onProgress && ((cp) => deps.onProgress?.(run.job, cp)),
    });
  } catch (e) {
    throw await afterFailedPass(run, e, cache, cachedBytes);
  }
  if (!result.done) {
    await cache.commitAll();
    run.log.info('job.continued', { stage: 'transfer', watermark: result.checkpoint.watermark });
    return run.wait(withSent(result.checkpoint), 0);
  }
  await cache.discard();
  run.log.info('transfer.verified', {
    vhdBytes: result.vhdBytes,
    sentBytes: result.sentBytes,
    imageSha256: result.imageSha256,
  });
  const verified: Partial<Job> = {
    ...withSent(result.checkpoint),
    vhdBytes: result.vhdBytes,
    imageSha256: result.imageSha256,
    imageSha1: result.imageSha1,
    cloudProperties: JSON.stringify(result.manifest.cloudProperties),
  };
  // Without a gallery the verified blob is the result: one write, so no crash can split it.
  if (!deps.gallery) return run.finish('staged', verified);
  await run.save({ ...verified, stage: 'publish' });
  return undefined;
}

/** The release the job resolved: every pass downloads exactly this archive. */
function releaseOf(j: Job): StemcellRelease {
  if (j.downloadUrl === undefined)
    throw new MirrorError('INTERNAL', 'transfer started before the release was resolved');
  return {
    series: j.series,
    version: j.version,
    url: j.downloadUrl,
    size: j.downloadTotalBytes,
    sha256: j.archiveSha256,
    sha1: j.archiveSha1,
  };
}

/** The job's progress fields from a transfer checkpoint. */
function progressFields(cp: TransferCheckpoint): Partial<Job> {
  return {
    watermark: cp.watermark,
    downloadedBytes: cp.downloadedBytes,
    uploadedBytes: cp.uploadedBytes,
    skippedZeroBytes: cp.skippedZeroBytes,
    vhdBytes: cp.vhdBytes,
  };
}

/**
 * Keeps what the pass downloaded for the retry, unless the failure is for good. A checksum
 * mismatch after reading a cached prefix may be the cache's fault: drop it and try once more clean.
 */
async function afterFailedPass(
  run: StageRun,
  e: unknown,
  cache: DownloadCache,
  cachedBytes: number,
): Promise<unknown> {
  const permanent = isMirrorError(e) && e.permanent;
  try {
    if (!permanent) await cache.commitAll();
    else await cache.discard();
  } catch (cacheError) {
    run.log.warn('download-cache.failed', { error: toErrorInfo(cacheError) });
  }
  if (isMirrorError(e) && e.code === 'CHECKSUM_MISMATCH' && cachedBytes > 0) {
    return new MirrorError(
      'DOWNLOAD_FAILED',
      `${e.message} (after ${cachedBytes} cached bytes: retrying without the cache)`,
      { permanent: false, cause: e },
    );
  }
  return e;
}
