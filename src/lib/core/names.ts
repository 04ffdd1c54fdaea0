/**
 * The naming rules of stemcells and gallery versions, one function per rule, so that every key,
 * URL and blob name is built from values that passed the same check.
 */
import { MirrorError } from './errors';

/** bosh.io series, e.g. bosh-azure-hyperv-ubuntu-jammy-go_agent or bosh-azure-hyperv-ubuntu-noble. */
const SERIES_PATTERN = /^bosh-[a-z0-9]+(?:-[a-z0-9_]+){1,8}$/;
const AZURE_SERIES_PATTERN = /^bosh-azure-[a-z0-9]+(?:-[a-z0-9_]+){1,7}$/;
/** bosh.io versions: 1.682, 621.125, 1.682.3 (each part at most 9 digits). */
const VERSION_PATTERN = /^(?:0|[1-9]\d{0,8})(?:\.(?:0|[1-9]\d{0,8})){0,2}$/;
const INT32_MAX = 2 ** 31 - 1;

export function isSeriesName(s: string): boolean {
  return s.length <= 100 && SERIES_PATTERN.test(s);
}

export function isAzureSeries(s: string): boolean {
  return s.length <= 100 && AZURE_SERIES_PATTERN.test(s);
}

export function isStemcellVersion(v: string): boolean {
  return VERSION_PATTERN.test(v);
}

/** Numeric parts of a version; missing parts count as 0. */
export function versionParts(v: string): [number, number, number] {
  const p = v.split('.').map((x) => Number.parseInt(x, 10));
  return [p[0] ?? 0, p[1] ?? 0, p[2] ?? 0];
}

/** Orders versions by numeric comparison of the dot-separated parts (1.10 > 1.9). */
export function compareVersions(a: string, b: string): number {
  const pa = versionParts(a);
  const pb = versionParts(b);
  for (let i = 0; i < 3; i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * The gallery image version name for a stemcell version: MAJOR.MINOR.PATCH with 32-bit parts
 * (1.682 → 1.682.0). Throws INVALID_REQUEST for anything Azure would refuse.
 */
export function toGalleryVersion(stemcellVersion: string): string {
  if (!isStemcellVersion(stemcellVersion)) {
    throw new MirrorError(
      'INVALID_REQUEST',
      `"${stemcellVersion}" is not a stemcell version (expected e.g. 1.682)`,
    );
  }
  const parts = versionParts(stemcellVersion);
  if (parts.some((n) => n > INT32_MAX)) {
    throw new MirrorError(
      'INVALID_REQUEST',
      `"${stemcellVersion}" cannot be a gallery image version: each part must fit in 32 bits`,
    );
  }
  return parts.join('.');
}
