/**
 * Stage replicate: follows the image version's creation (replication to every target region) one
 * poll per invocation, so no invocation outlives its budget however long Azure takes.
 */
import { MirrorError } from '../core/errors';
import type { StageResult, StageRun } from './stage';

export async function replicateStage(run: StageRun): Promise<StageResult> {
  const g = run.deps.gallery!;
  const definition = run.job.definitionName!;
  if (run.job.pollerState !== undefined) {
    const r = await g.pollVersion(run.job.pollerState);
    if (r.status === 'running') return run.wait({ pollerState: r.state });
    if (r.status === 'failed') {
      // The staged blob stays for a retry.
      throw new MirrorError(
        'GALLERY_FAILED',
        `image version creation failed: ${r.error.code}: ${r.error.message}`,
        { permanent: true },
      );
    }
    await run.save({ galleryImageVersionId: r.version.id, pollerState: undefined, stage: 'notify' });
    return undefined;
  }
  // No saved poller (an invocation died right after the create started): the version itself tells.
  const v = await g.getVersion(definition, run.job.galleryVersion);
  if (!v) {
    await run.save({ stage: 'publish' });
    return undefined;
  }
  if (v.provisioningState === 'Succeeded') {
    await run.save({ galleryImageVersionId: v.id, stage: 'notify' });
    return undefined;
  }
  if (v.provisioningState === 'Failed') {
    throw new MirrorError('GALLERY_FAILED', `image version ${definition}/${v.name} ended Failed`, {
      permanent: true,
    });
  }
  return run.wait({});
}
