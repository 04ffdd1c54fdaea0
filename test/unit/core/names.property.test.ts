/**
 * Properties of version normalisation: a bosh.io version becomes a gallery version MAJOR.MINOR.PATCH
 * that Azure accepts, the order of versions is the order of their gallery versions, and anything
 * that is not a version is refused with INVALID_REQUEST.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MirrorError } from '../../../src/lib/core/errors';
import { compareVersions, isStemcellVersion, toGalleryVersion } from '../../../src/lib/core/names';

const RUNS = { numRuns: 500 };
const part = fc.oneof(fc.nat({ max: 20 }), fc.nat({ max: 999_999_999 }));
const version = fc.array(part, { minLength: 1, maxLength: 3 }).map((p) => p.join('.'));
const INT32_MAX = 2 ** 31 - 1;

describe('version normalisation (property)', () => {
  it('maps every version to three 32-bit parts, padding missing ones with 0', () => {
    fc.assert(
      fc.property(version, (v) => {
        expect(isStemcellVersion(v)).toBe(true);
        const g = toGalleryVersion(v).split('.').map(Number);
        expect(g).toHaveLength(3);
        expect(g.every((n) => Number.isInteger(n) && n >= 0 && n <= INT32_MAX)).toBe(true);
        expect(g.slice(0, v.split('.').length).join('.')).toBe(v);
      }),
      RUNS,
    );
  });

  it('orders versions as their gallery versions: numerically, part by part', () => {
    fc.assert(
      fc.property(version, version, version, (a, b, c) => {
        const ab = Math.sign(compareVersions(a, b));
        expect(Math.sign(compareVersions(b, a))).toBe(-ab || 0);
        expect(ab === 0).toBe(toGalleryVersion(a) === toGalleryVersion(b));
        if (compareVersions(a, b) <= 0 && compareVersions(b, c) <= 0) {
          expect(compareVersions(a, c)).toBeLessThanOrEqual(0);
        }
      }),
      RUNS,
    );
  });

  it('refuses anything else with INVALID_REQUEST, never another error', () => {
    const junk = fc.oneof(
      fc.string({ maxLength: 30 }),
      fc.stringMatching(/^[0-9.+\-e ]{0,20}$/),
      fc.array(part, { minLength: 4, maxLength: 6 }).map((p) => p.join('.')),
      version.map((v) => `0${v}`),
    );
    fc.assert(
      fc.property(junk, (s) => {
        if (isStemcellVersion(s)) return;
        let err: unknown;
        try {
          toGalleryVersion(s);
        } catch (e) {
          err = e;
        }
        expect(err).toBeInstanceOf(MirrorError);
        expect((err as MirrorError).code).toBe('INVALID_REQUEST');
      }),
      RUNS,
    );
  });
});
