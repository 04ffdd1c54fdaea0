/**
 * Hostile and broken archives the extractor must refuse or shrug off: path tricks, links, entries
 * whose data disagrees with their header, a truncated inner layer, a compression bomb beside the
 * image. Nothing is ever written to disk, so a path can only matter through the entry names the
 * extractor accepts; these tests pin those.
 */
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { gzipSync } from 'node:zlib';
import { Header } from 'tar';
import { describe, expect, it } from 'vitest';
import { isMirrorError } from '../../../src/lib/core/errors';
import { extractStemcell } from '../../../src/lib/stemcell/archive';
import { makeStemcell, makeVhd, tarBytes, type TarFile } from '../../support/stemcell-fixture';

const MIB = 1024 * 1024;

async function run(tgz: Buffer): Promise<{ code: string; message: string } | { vhd: Buffer }> {
  let vhd: Buffer = Buffer.alloc(0);
  try {
    await extractStemcell(Readable.from([tgz]), {
      onVhd: async (entry) => {
        vhd = await buffer(entry);
      },
    });
    return { vhd };
  } catch (e) {
    if (isMirrorError(e)) return { code: e.code, message: e.message };
    throw e;
  }
}

/** A stemcell whose image holds `inner` (tar entries), with a matching stemcell.MF. */
function stemcellWith(inner: Buffer, outerExtra: TarFile[] = []): Buffer {
  const f = makeStemcell({ vhdMiB: 8 });
  const image = gzipSync(inner, { level: 1 });
  const mf = f.manifestText.replace(f.imageSha1, sha1(image));
  return gzipSync(
    tarBytes([{ name: 'stemcell.MF', data: Buffer.from(mf) }, { name: 'image', data: image }, ...outerExtra]),
    { level: 1 },
  );
}

function sha1(b: Buffer): string {
  return createHash('sha1').update(b).digest('hex');
}

/** One raw tar entry of any type (the fixture's tarBytes writes files and folders only). */
function rawEntry(path: string, type: string, data: Buffer = Buffer.alloc(0), extra: object = {}): Buffer {
  const h = new Header({ path, mode: 0o644, size: data.length, mtime: new Date(0), type, ...extra } as never);
  h.encode();
  return Buffer.concat([h.block!, data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

const END = Buffer.alloc(1024);
const vhd = makeVhd({ vhdMiB: 8, seed: 'faults', dynamic: false, extraMiB: 0 });

describe('archive faults', () => {
  it.each([
    ['a parent-directory path', '../root.vhd'],
    ['an absolute path', '/root.vhd'],
    ['a path into a folder', 'disk/../root.vhd'],
  ])('refuses a VHD at %s inside image', async (_name, path) => {
    const r = await run(stemcellWith(Buffer.concat([rawEntry(path, 'File', vhd), END])));
    expect(r).toMatchObject({ code: 'ARCHIVE_INVALID', message: expect.stringMatching(/nested/) });
  });

  it('refuses a symbolic or hard link named like a VHD', async () => {
    for (const type of ['SymbolicLink', 'Link']) {
      const r = await run(
        stemcellWith(
          Buffer.concat([rawEntry('root.vhd', type, Buffer.alloc(0), { linkpath: '/etc/passwd' }), END]),
        ),
      );
      expect(r).toMatchObject({ code: 'ARCHIVE_INVALID', message: expect.stringMatching(/unexpected/) });
    }
  });

  it('does not take an image outside the archive root for the image entry', async () => {
    const f = makeStemcell({ vhdMiB: 8 });
    for (const name of ['../image', '/image', 'x/image']) {
      const tgz = gzipSync(
        tarBytes([
          { name: 'stemcell.MF', data: Buffer.from(f.manifestText) },
          { name, data: f.image },
        ]),
      );
      expect(await run(tgz)).toMatchObject({
        code: 'ARCHIVE_INVALID',
        message: expect.stringMatching(/no image/),
      });
    }
  });

  it('refuses an archive inside image and a second image or stemcell.MF', async () => {
    const inner = await run(
      stemcellWith(
        tarBytes([
          { name: 'root.vhd.tgz', data: gzipSync(vhd) },
          { name: 'root.vhd', data: vhd },
        ]),
      ),
    );
    expect(inner).toMatchObject({ code: 'ARCHIVE_INVALID', message: expect.stringMatching(/archive/) });
    const f = makeStemcell({ vhdMiB: 8 });
    const twice = (name: string, data: Buffer) =>
      gzipSync(
        tarBytes([
          { name: 'stemcell.MF', data: Buffer.from(f.manifestText) },
          { name: 'image', data: f.image },
          { name, data },
        ]),
      );
    expect(await run(twice('image', f.image))).toMatchObject({
      code: 'ARCHIVE_INVALID',
      message: /two image/,
    });
    expect(await run(twice('stemcell.MF', Buffer.from(f.manifestText)))).toMatchObject({
      code: 'ARCHIVE_INVALID',
      message: /two stemcell\.MF/,
    });
  });

  it('refuses an entry whose data runs past its declared size', async () => {
    // The header says 512 bytes; 2 KiB follow, so the parser meets data where the next header belongs.
    const header = rawEntry('notes.txt', 'File', Buffer.alloc(512)).subarray(0, 512);
    const inner = Buffer.concat([
      header,
      Buffer.alloc(2048, 0x41),
      tarBytes([{ name: 'root.vhd', data: vhd }]),
    ]);
    expect(await run(stemcellWith(inner))).toMatchObject({
      code: 'ARCHIVE_INVALID',
      message: expect.stringMatching(/not a valid tar/),
    });
  });

  it('refuses a VHD entry that ends before its declared size (truncated image layer)', async () => {
    const whole = tarBytes([{ name: 'root.vhd', data: vhd }]);
    const r = await run(stemcellWith(whole.subarray(0, 512 + vhd.length / 2)));
    expect(r).toMatchObject({ code: 'ARCHIVE_INVALID' });
  });

  it('refuses a VHD entry whose size is not whole MiB plus the footer (misaligned)', async () => {
    const odd = Buffer.concat([vhd.subarray(0, MIB), Buffer.alloc(512), vhd.subarray(MIB)]);
    const r = await run(stemcellWith(tarBytes([{ name: 'root.vhd', data: odd }])));
    expect(r).toMatchObject({ code: 'VHD_INVALID', message: expect.stringMatching(/whole number of MiB/) });
  });

  it('drains a compression bomb beside the image without taking it for data', async () => {
    // 64 MiB of zeros that compress to about 64 KiB, as an entry the mirror does not read.
    const f = makeStemcell({ vhdMiB: 8 });
    const tgz = gzipSync(
      tarBytes([
        { name: 'stemcell.MF', data: Buffer.from(f.manifestText) },
        { name: 'packages.txt', data: Buffer.alloc(64 * MIB) },
        { name: 'image', data: f.image },
      ]),
      { level: 9 },
    );
    expect(gzipSync(Buffer.alloc(64 * MIB), { level: 9 }).length).toBeLessThan(MIB / 8);
    const r = await run(tgz);
    expect('vhd' in r && r.vhd.equals(f.vhd)).toBe(true);
  });
});
