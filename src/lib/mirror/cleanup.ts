/**
 * Stage cleanup: the staged VHD goes once the version holds its bytes, then retention keeps the
 * newest BASM_RETAIN_VERSIONS versions of the definition. The version is published and announced by
 * now: nothing here may un-publish it, so a failure is logged and left to the next job.
 */
import { blobNameInContainer } from '../azure/blob-names';
import { storageError } from '../core/azure-errors';
import { toErrorInfo } from '../core/errors';
import { toGalleryVersion } from '../core/names';
import { stemcellReferences, usedByMirrorAlone } from '../stemcell/cpi-image';
import { deleteStagedBlob } from './publish';
import type { StageResult, StageRun } from './stage';

export async function cleanupStage(run: StageRun): Promise<StageResult> {
  try {
    await deleteStagedBlob(run);
    await applyRetention(run);
  } catch (e) {
    run.log.warn('cleanup.failed', { error: toErrorInfo(e) });
  }
  return run.finish('succeeded');
}

/**
 * Deletes the versions beyond the newest N, but only those the mirror alone uses: a version a
 * director created or shares (stemcell_references) is kept and logged.
 */
async function applyRetention(run: StageRun): Promise<void> {
  const keep = run.deps.config.retainVersions;
  const g = run.deps.gallery;
  const definition = run.job.definitionName;
  if (!g || keep <= 0 || !definition) return;
  const latest = await run.deps.boshio.resolve(run.job.series, 'latest').catch(() => undefined);
  const versions = await g.listVersions(definition);
  const protect = [run.job.galleryVersion, ...(latest ? [toGalleryVersion(latest.version)] : [])];
  const container = run.deps.container;
  for (const v of g.selectForRetention(versions, keep, protect)) {
    if (!usedByMirrorAlone(v.tags)) {
      run.log.info('retention.kept-shared', {
        definition,
        galleryVersion: v.name,
        references: stemcellReferences(v.tags),
      });
      continue;
    }
    run.log.info('retention.delete', { definition, galleryVersion: v.name });
    await g.beginDeleteVersion(definition, v.name);
    const staged = blobNameInContainer(container.url, v.tags.staged_blob);
    if (staged === undefined) continue;
    await container
      .getBlobClient(staged)
      .deleteIfExists()
      .catch((e: unknown) => {
        throw storageError(e, `Deleting the staged blob ${staged} failed`);
      });
  }
}
