/**
 * Stage cleanup: the staged VHD goes once the version holds its bytes, then retention keeps the
 * newest BASM_RETAIN_VERSIONS versions of the definition.
 */
import { blobNameInContainer } from '../azure/blob-names';
import { toGalleryVersion } from '../core/names';
import { deleteStagedBlob } from './publish';
import type { StageResult, StageRun } from './stage';

export async function cleanupStage(run: StageRun): Promise<StageResult> {
  await deleteStagedBlob(run);
  await applyRetention(run);
  return run.finish('succeeded');
}

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
    run.log.info('retention.delete', { definition, galleryVersion: v.name });
    await g.beginDeleteVersion(definition, v.name);
    const staged = blobNameInContainer(container.url, v.tags.staged_blob);
    if (staged !== undefined) await container.getBlobClient(staged).deleteIfExists();
  }
}
