/**
 * What publishing does about the image version already at the job's name, if any. A pure function of
 * what Azure reported and what the job carries, so every case is a unit test.
 */
import type { VersionInfo } from '../azure/gallery';
import { stemcellReferences, usedByMirrorAlone } from '../stemcell/cpi-image';

export type PublishDecision =
  /** No version yet: create it. */
  | { kind: 'create' }
  /** The same image (`image_sha256`) is already Succeeded: nothing to publish. */
  | { kind: 'skip'; versionId: string }
  /** A create is under way (our own, from an invocation that died before it saved its poller): follow it. */
  | { kind: 'follow' }
  /**
   * Forced, or the version ended Failed (or is in another state): delete it, then create it again;
   * only ever a version the mirror alone uses.
   */
  | { kind: 'replace' }
  /**
   * Another image under the same version name and no force, or a version a BOSH director created or
   * uses: never overwritten (a director may be booting VMs from it).
   */
  | { kind: 'conflict'; reason: string };

export interface PublishWanted {
  /** sha256 of the stemcell's `image` entry, as the CPI tags it (`image_sha256`). */
  imageSha256: string | undefined;
  force: boolean;
}

export function decidePublish(existing: VersionInfo | undefined, wanted: PublishWanted): PublishDecision {
  if (!existing) return { kind: 'create' };
  const state = existing.provisioningState;
  const same = existing.tags.image_sha256 === wanted.imageSha256;
  if (!wanted.force) {
    if (state === 'Succeeded' && same) return { kind: 'skip', versionId: existing.id };
    if (state === 'Succeeded') {
      return {
        kind: 'conflict',
        reason:
          `it already exists with different content (image_sha256 ${existing.tags.image_sha256 ?? 'not tagged'}, ` +
          `this stemcell ${wanted.imageSha256}); request it with force to replace it`,
      };
    }
    if (state === 'Creating' || state === 'Updating') return { kind: 'follow' };
  }
  if (!usedByMirrorAlone(existing.tags)) {
    const refs = stemcellReferences(existing.tags);
    return {
      kind: 'conflict',
      reason:
        refs.length > 0
          ? `it is in use by BOSH (stemcell_references: ${refs.join(', ')}), so the mirror does not replace it`
          : 'it was not created by the mirror (no stemcell_references tag), so the mirror does not replace it',
    };
  }
  return { kind: 'replace' };
}
