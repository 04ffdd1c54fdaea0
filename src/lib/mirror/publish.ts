/**
 * Stage publish: the image definition (named and identified as the BOSH Azure CPI does), then the
 * image version created from the staged blob. The long-running create is not waited on: its poller
 * state is saved and the replicate stage follows it.
 */
import { blobUrlForTag, stagedVhdBlobName } from '../azure/blob-names';
import { storageError } from '../core/azure-errors';
import { compareVersions } from '../core/names';
import { MirrorError } from '../core/errors';
import {
  cpiVersionTags,
  imageDefinitionFor,
  withTags,
  type ImageDefinitionSpec,
} from '../stemcell/cpi-image';
import type { Job } from '../jobs/job';
import { decidePublish } from './publish-decision';
import type { StageResult, StageRun } from './stage';

export async function publishStage(run: StageRun): Promise<StageResult> {
  const g = run.deps.gallery!;
  const gc = run.deps.config.gallery!;
  const spec = imageDefinitionFor(cloudPropertiesOf(run.job), gc);
  await g.ensureImageDefinition(spec);
  const gv = run.job.galleryVersion;
  const existing = await g.getVersion(spec.name, gv);
  const decision = decidePublish(existing, { imageSha256: run.job.imageSha256, force: run.job.force });
  switch (decision.kind) {
    case 'skip':
      await run.save({ definitionName: spec.name, galleryImageVersionId: decision.versionId });
      await deleteStagedBlob(run);
      return run.finish('skipped');
    case 'conflict':
      throw new MirrorError(
        'GALLERY_CONFLICT',
        `gallery image ${spec.name} version ${gv}: ${decision.reason}`,
      );
    case 'follow':
      await run.save({ definitionName: spec.name, stage: 'replicate', pollerState: undefined });
      return undefined;
    case 'replace': {
      run.log.info('gallery.replace', {
        definition: spec.name,
        galleryVersion: gv,
        state: existing?.provisioningState,
      });
      const state = await g.beginDeleteVersion(spec.name, gv);
      while ((await g.pollDelete(state)) === 'running') {
        if (run.budget.aborted) return run.wait({ definitionName: spec.name });
        await delay(pollDelayMs(run));
      }
      break;
    }
    case 'create':
      break;
  }
  const versions = await g.listVersions(spec.name);
  const excludeFromLatest = versions.some((v) => v.name !== gv && compareVersions(v.name, gv) > 0);
  const blobName = run.job.blobName ?? stagedVhdBlobName(run.job.series, run.job.version);
  const sourceUri = run.deps.container.getBlobClient(blobName).url;
  const pollerState = await g.beginCreateVersion(spec.name, gv, {
    sourceUri,
    excludeFromLatest,
    tags: versionTags(run, spec, sourceUri),
  });
  await run.save({ definitionName: spec.name, pollerState, stage: 'replicate', force: false });
  return undefined;
}

function cloudPropertiesOf(job: Job): Record<string, unknown> {
  return JSON.parse(job.cloudProperties ?? '{}') as Record<string, unknown>;
}

/** The tags the BOSH Azure CPI writes (so a director reuses the version), then what this mirror adds. */
function versionTags(run: StageRun, spec: ImageDefinitionSpec, sourceUri: string): Record<string, string> {
  const j = run.job;
  const tags = cpiVersionTags(cloudPropertiesOf(j), spec, {
    galleryName: run.deps.config.gallery!.galleryName,
    galleryVersion: j.galleryVersion,
    imageSha256: j.imageSha256 ?? '',
  });
  return withTags(tags, {
    // Lets a later request skip the transfer when bosh.io still serves this very archive.
    stemcell_sha256: j.archiveSha256 ?? '',
    stemcell_series: j.series,
    stemcell_version: j.version,
    staged_blob: blobUrlForTag(sourceUri),
    source_url: j.downloadUrl ?? '',
  });
}

/** Removes the staged VHD once a version holds its bytes (unless BASM_KEEP_SOURCE_VHD). */
export async function deleteStagedBlob(run: StageRun): Promise<void> {
  if (run.deps.config.keepSourceVhd || run.job.blobName === undefined) return;
  await run.deps.container
    .getBlobClient(run.job.blobName)
    .deleteIfExists()
    .catch((e: unknown) => {
      throw storageError(e, `Deleting the staged blob ${run.job.blobName} failed`);
    });
}

function pollDelayMs(run: StageRun): number {
  return Math.min(5, run.deps.pollDelaySeconds ?? 5) * 1000;
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
