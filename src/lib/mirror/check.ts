/**
 * Stage check: a version already in the gallery from this very archive needs no transfer. Before
 * the transfer nobody has read stemcell.MF, so each definition the series' stemcells may be named
 * into is asked (stemcell/cpi-image.ts names them, as publishing does).
 */
import { imageDefinitionCandidates } from '../stemcell/cpi-image';
import type { StageResult, StageRun } from './stage';

export async function checkStage(run: StageRun): Promise<StageResult> {
  if (await alreadyPublished(run)) return run.finish('skipped');
  await run.save({ stage: 'transfer' });
  return undefined;
}

async function alreadyPublished(run: StageRun): Promise<boolean> {
  const { gallery } = run.deps;
  const gc = run.deps.config.gallery;
  const { job } = run;
  if (!gallery || !gc || job.force || job.archiveSha256 === undefined) return false;
  for (const definition of imageDefinitionCandidates(job.series, gc.imageName)) {
    const v = await gallery.getVersion(definition, job.galleryVersion);
    if (v?.provisioningState === 'Succeeded' && v.tags.stemcell_sha256 === job.archiveSha256) {
      await run.save({ definitionName: definition, galleryImageVersionId: v.id });
      return true;
    }
  }
  return false;
}
