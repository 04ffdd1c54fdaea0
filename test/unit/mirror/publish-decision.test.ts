import { describe, expect, it } from 'vitest';
import type { VersionInfo } from '../../../src/lib/azure/gallery';
import { decidePublish } from '../../../src/lib/mirror/publish-decision';
import { MIRROR_STEMCELL_REFERENCE } from '../../../src/lib/stemcell/cpi-image';

const SHA = 'a'.repeat(64);
const OTHER = 'b'.repeat(64);

const MINE = { stemcell_references: MIRROR_STEMCELL_REFERENCE };

function version(
  provisioningState: string,
  tags: Record<string, string> = { image_sha256: SHA, ...MINE },
): VersionInfo {
  return {
    name: '1.682.0',
    provisioningState,
    tags,
    id: '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/d/versions/1.682.0',
    excludeFromLatest: false,
    sourceUri: undefined,
    publishedDate: undefined,
  };
}

describe('decidePublish', () => {
  it('creates when no version exists, forced or not', () => {
    expect(decidePublish(undefined, { imageSha256: SHA, force: false })).toEqual({ kind: 'create' });
    expect(decidePublish(undefined, { imageSha256: SHA, force: true })).toEqual({ kind: 'create' });
  });

  it('skips a Succeeded version of the same image, and names it', () => {
    const v = version('Succeeded');
    expect(decidePublish(v, { imageSha256: SHA, force: false })).toEqual({ kind: 'skip', versionId: v.id });
  });

  it('refuses a Succeeded version of another image without force, naming both checksums', () => {
    const d = decidePublish(version('Succeeded', { image_sha256: OTHER }), {
      imageSha256: SHA,
      force: false,
    });
    expect(d.kind).toBe('conflict');
    expect(d.kind === 'conflict' && d.reason).toContain(OTHER);
    expect(d.kind === 'conflict' && d.reason).toContain(SHA);
  });

  it('calls an untagged version another image', () => {
    const d = decidePublish(version('Succeeded', {}), { imageSha256: SHA, force: false });
    expect(d.kind === 'conflict' && d.reason).toContain('not tagged');
  });

  it('follows a create under way instead of starting another', () => {
    for (const state of ['Creating', 'Updating']) {
      expect(decidePublish(version(state), { imageSha256: SHA, force: false })).toEqual({ kind: 'follow' });
    }
  });

  it('replaces a Failed version, and any version when forced', () => {
    expect(decidePublish(version('Failed'), { imageSha256: SHA, force: false })).toEqual({ kind: 'replace' });
    for (const state of ['Succeeded', 'Creating', 'Failed']) {
      expect(decidePublish(version(state), { imageSha256: SHA, force: true })).toEqual({ kind: 'replace' });
      expect(
        decidePublish(version(state, { image_sha256: OTHER, ...MINE }), { imageSha256: SHA, force: true }),
      ).toEqual({
        kind: 'replace',
      });
    }
  });

  it('never replaces a version a director uses or created, forced or Failed, and names its references', () => {
    const shared = {
      image_sha256: SHA,
      stemcell_references: `${MIRROR_STEMCELL_REFERENCE},bosh-stemcell-5f1e`,
    };
    const directors = { image_sha256: OTHER, stemcell_references: 'bosh-stemcell-77aa' };
    for (const [tags, named] of [
      [shared, 'bosh-stemcell-5f1e'],
      [directors, 'bosh-stemcell-77aa'],
    ] as const) {
      for (const state of ['Succeeded', 'Failed', 'Creating']) {
        const d = decidePublish(version(state, tags), { imageSha256: SHA, force: true });
        expect(d.kind).toBe('conflict');
        expect(d.kind === 'conflict' && d.reason).toContain(named);
      }
    }
    const d = decidePublish(version('Failed', { image_sha256: SHA }), { imageSha256: SHA, force: false });
    expect(d.kind === 'conflict' && d.reason).toContain('not created by the mirror');
  });

  it('still reuses a shared version of the same image without force, as the CPI does', () => {
    const v = version('Succeeded', { image_sha256: SHA, stemcell_references: 'bosh-stemcell-77aa' });
    expect(decidePublish(v, { imageSha256: SHA, force: false })).toEqual({ kind: 'skip', versionId: v.id });
  });
});
