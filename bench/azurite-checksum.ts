/**
 * Loaded into the capped runs' Azurite by `node --require azurite-checksum-preload.js`: Azurite's
 * transactional checksums, computed with `@aws-sdk/crc64-nvme` instead of Azurite's own
 * byte-at-a-time CRC-64/NVME.
 *
 * Why: Azurite 3.37 computes a CRC-64/NVME of every Put Page body (Azure returns one in
 * `x-ms-content-crc64`) in plain JavaScript at ~70 MiB/s on one core here, so at the 60 MiB/s cap
 * it takes nearly a core of the benchmark machine's two. Azure Storage computes it on its own
 * hardware; on ours it took that core from the mirror and the sink both, and the capped sink fell
 * below its cap whenever the mirror worked (a 4 MiB Put Page waited 0.55 s for its answer, median).
 * The library does the same CRC about three times faster; the answers stay Azurite's, bit for bit
 * (`test/integration/bench/azurite-checksum.test.ts`).
 *
 * Fails Azurite's start, loudly, if Azurite's internals no longer have the function replaced here.
 */
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { Crc64Nvme } from '@aws-sdk/crc64-nvme';

interface Expected {
  md5?: unknown;
  crc64?: unknown;
}
interface Checksums {
  md5: Uint8Array | undefined;
  crc64: Uint8Array | undefined;
}
type Compute = (
  stream: Readable,
  expected: Expected,
  force?: { md5?: boolean; crc64?: boolean },
) => Promise<Checksums>;

/** Azurite's module holding `computeTransactionalChecksums` (3.37's layout). */
export function azuriteChecksumModule(): string {
  return join(dirname(require.resolve('azurite/package.json')), 'dist', 'src', 'common', 'utils', 'utils.js');
}

/** As Azurite's: MD5 and/or CRC-64/NVME when the request carries one or the caller forces it. */
export const computeTransactionalChecksums: Compute = async (stream, expected, force) => {
  const md5 = expected.md5 !== undefined || force?.md5 === true ? createHash('md5') : undefined;
  const crc = expected.crc64 !== undefined || force?.crc64 === true ? new Crc64Nvme() : undefined;
  for await (const chunk of stream) {
    md5?.update(chunk as Buffer);
    crc?.update(chunk as Buffer);
  }
  return {
    md5: md5 && new Uint8Array(md5.digest()),
    // The library gives the CRC most significant byte first; Azure sends it least significant first.
    crc64: crc && new Uint8Array(await crc.digest()).reverse(),
  };
};

/** Azurite's checksum module, as loaded in this process (CommonJS: one shared exports object). */
export function azuriteModule(): Record<string, unknown> {
  return createRequire(__filename)(azuriteChecksumModule()) as Record<string, unknown>;
}

/** Puts `computeTransactionalChecksums` in Azurite's place; `azurite-checksum-preload` calls it. */
export function installInAzurite(): void {
  const mod = azuriteModule();
  if (typeof mod.computeTransactionalChecksums !== 'function') {
    throw new Error(`${azuriteChecksumModule()} has no computeTransactionalChecksums: Azurite changed`);
  }
  mod.computeTransactionalChecksums = computeTransactionalChecksums;
}
