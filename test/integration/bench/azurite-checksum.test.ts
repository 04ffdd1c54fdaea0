/**
 * The capped benchmark's Azurite computes its Put Page CRC-64 with a library instead of its own
 * loop (`bench/azurite-checksum.ts`). That may change Azurite's cost, never its answers: the same
 * checksums as Azurite's own function for any body, and the same `x-ms-content-crc64` from a
 * running Azurite with the module preloaded.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { BlobServiceClient } from '@azure/storage-blob';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  azuriteModule,
  computeTransactionalChecksums,
  installInAzurite,
} from '../../../bench/azurite-checksum';
import { startAzurite, type Azurite } from '../../../src/local/azurite';
import { ensureBuilt, ROOT } from '../../support/build';

type Compute = typeof computeTransactionalChecksums;
// Azurite's own, loaded in this process (where nothing replaces it).
const azurites = (azuriteModule() as unknown as { computeTransactionalChecksums: Compute })
  .computeTransactionalChecksums;

/** The body as the chunks a request stream would deliver. */
const chunked = (buf: Buffer, size: number): Readable => {
  const parts: Buffer[] = [];
  for (let i = 0; i < buf.length; i += size) parts.push(buf.subarray(i, i + size));
  return Readable.from(parts);
};

describe('the capped sink checksum', () => {
  it('computes what Azurite computes, for any body, chunking and request', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 70_000 }),
        fc.integer({ min: 1, max: 20_000 }),
        fc.record({ md5: fc.boolean(), crc64: fc.boolean() }),
        fc.boolean(),
        async (bytes, chunk, force, md5Header) => {
          const buf = Buffer.from(bytes);
          const expected = md5Header ? { md5: 'x' } : {};
          const ours = await computeTransactionalChecksums(chunked(buf, chunk), expected, force);
          const theirs = await azurites(chunked(buf, chunk), expected, force);
          expect(ours).toEqual(theirs);
        },
      ),
      { numRuns: 150 },
    );
  });

  it("takes the place of Azurite's function where it is installed", async () => {
    const mod = azuriteModule() as unknown as { computeTransactionalChecksums: Compute };
    const saved = mod.computeTransactionalChecksums;
    try {
      installInAzurite();
      expect(mod.computeTransactionalChecksums).toBe(computeTransactionalChecksums);
    } finally {
      mod.computeTransactionalChecksums = saved;
    }
  });

  describe('preloaded into a running Azurite', () => {
    let azurite: Azurite;
    beforeAll(async () => {
      const preload = join(ROOT, 'dist', 'bench', 'azurite-checksum-preload.js');
      ensureBuilt(preload, ['bench', 'src']);
      azurite = await startAzurite({ nodeArgs: ['--require', preload] });
    }, 60_000);
    afterAll(async () => azurite?.stop());

    it('answers each Put Page with the CRC-64 Azurite itself would send', async () => {
      const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(
        'crc',
      );
      await container.createIfNotExists();
      const blob = container.getPageBlobClient('p.vhd');
      await blob.create(8 * 1024 * 1024);
      const bodies = [randomBytes(4 * 1024 * 1024), Buffer.alloc(512), randomBytes(3 * 512)];
      let offset = 0;
      for (const body of bodies) {
        const res = await blob.uploadPages(body, offset, body.length);
        offset += body.length;
        const own = await azurites(Readable.from([body]), {}, { crc64: true });
        const header = res._response.headers.get('x-ms-content-crc64');
        console.log(
          Object.keys(res),
          header,
          JSON.stringify((res._response.headers as unknown as { rawHeaders(): unknown }).rawHeaders()),
        );
        expect(header).toBe(Buffer.from(own.crc64!).toString('base64'));
      }
    });
  });
});
