import { describe, expect, it } from 'vitest';
import {
  MIRROR_STEMCELL_REFERENCE,
  stemcellReferences,
  usedByMirrorAlone,
} from '../../../src/lib/stemcell/cpi-image';

describe('stemcell_references', () => {
  it('reads the comma-separated names as the CPI writes them', () => {
    expect(stemcellReferences({ stemcell_references: 'a, b,,c ' })).toEqual(['a', 'b', 'c']);
    expect(stemcellReferences({})).toEqual([]);
  });

  it('counts a version as the mirror’s alone only when it holds the mirror’s reference and no other', () => {
    expect(usedByMirrorAlone({ stemcell_references: MIRROR_STEMCELL_REFERENCE })).toBe(true);
    expect(
      usedByMirrorAlone({ stemcell_references: `${MIRROR_STEMCELL_REFERENCE},${MIRROR_STEMCELL_REFERENCE}` }),
    ).toBe(true);
    expect(usedByMirrorAlone({ stemcell_references: `${MIRROR_STEMCELL_REFERENCE},bosh-stemcell-1` })).toBe(
      false,
    );
    expect(usedByMirrorAlone({ stemcell_references: 'bosh-stemcell-1' })).toBe(false);
    expect(usedByMirrorAlone({ stemcell_references: '' })).toBe(false);
    expect(usedByMirrorAlone({})).toBe(false);
  });
});
