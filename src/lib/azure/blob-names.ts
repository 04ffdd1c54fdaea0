/**
 * Where a stemcell's bytes sit in the VHD container: the one place that names staged blobs. Series
 * and version passed the naming rules (core/names.ts), so a name never holds `..`, `?` or `#`.
 */

/** The staged page blob of a stemcell's VHD: `<series>/<version>.vhd`. */
export function stagedVhdBlobName(series: string, version: string): string {
  return `${series}/${version}.vhd`;
}

/** The block blob that caches the compressed archive beside its staged VHD. */
export function downloadCacheBlobName(vhdBlobName: string): string {
  return `${vhdBlobName}.download`;
}

/** A blob's URL as recorded in a tag: without a query, so no SAS ever lands in a tag. */
export function blobUrlForTag(url: string): string {
  return url.split('?')[0] ?? '';
}

/**
 * The name of the blob at `url` when it lies in the container at `containerUrl` (a URL recorded by
 * blobUrlForTag); undefined for a blob elsewhere, which the mirror never touches.
 */
export function blobNameInContainer(containerUrl: string, url: string | undefined): string | undefined {
  const prefix = `${containerUrl.replace(/\/$/, '')}/`;
  if (url === undefined || !url.startsWith(prefix)) return undefined;
  return decodeURIComponent(url.slice(prefix.length));
}
