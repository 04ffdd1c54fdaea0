import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { buffer } from 'node:stream/consumers';
import { describe, expect, it } from 'vitest';
import { extractStemcell, parseManifest, type ExtractResult } from '../../../src/lib/stemcell/archive';
import { isMirrorError } from '../../../src/lib/core/errors';
import { makeStemcell, tarBytes, type StemcellFixtureOptions } from '../../support/stemcell-fixture';

function chunked(buf: Buffer, size = 64 * 1024): Readable {
  const parts: Buffer[] = [];
  for (let off = 0; off < buf.length; off += size) parts.push(buf.subarray(off, off + size));
  return Readable.from(parts, { objectMode: false });
}

async function extract(tgz: Buffer): Promise<{ result: ExtractResult; vhd: Buffer; names: string[] }> {
  let vhd: Buffer = Buffer.alloc(0);
  const names: string[] = [];
  const result = await extractStemcell(chunked(tgz), {
    onVhd: async (entry, info) => {
      names.push(info.name);
      vhd = await buffer(entry);
    },
  });
  return { result, vhd, names };
}

async function failure(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    if (isMirrorError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected a failure');
}

describe('extractStemcell', () => {
  it('streams the VHD out of image and captures stemcell.MF after it', async () => {
    const f = makeStemcell({ vhdMiB: 8 });
    const { result, vhd, names } = await extract(f.tgz);
    expect(vhd.equals(f.vhd)).toBe(true);
    expect(names).toEqual(['root.vhd']);
    expect(result.vhdName).toBe('root.vhd');
    expect(result.vhdSize).toBe(f.vhd.length);
    expect(result.imageSha1).toBe(f.imageSha1);
    expect(result.imageSha256).toBe(f.imageSha256);
    expect(result.manifest).toMatchObject({
      name: f.series,
      version: f.version,
      sha1: f.imageSha1,
      operatingSystem: 'ubuntu-jammy',
    });
    expect(result.manifest.cloudProperties).toMatchObject({
      infrastructure: 'azure',
      disk: 8,
      architecture: 'x86_64',
    });
  });

  it('captures stemcell.MF written before image', async () => {
    const f = makeStemcell({ vhdMiB: 8, mfFirst: true, version: '1.10' });
    const { result, vhd } = await extract(f.tgz);
    expect(vhd.equals(f.vhd)).toBe(true);
    expect(result.manifest.version).toBe('1.10');
  });

  it('ignores AppleDouble companions (even ._root.vhd) and pax headers', async () => {
    const f = makeStemcell({ vhdMiB: 8, appleDouble: true, pax: true });
    const { vhd, names, result } = await extract(f.tgz);
    expect(names).toEqual(['root.vhd']);
    expect(vhd.equals(f.vhd)).toBe(true);
    expect(result.manifest.sha1).toBe(f.imageSha1);
  });

  it.each<[string, StemcellFixtureOptions, string, RegExp]>([
    ['no image', { missingImage: true }, 'ARCHIVE_INVALID', /no image/],
    ['no VHD in image', { imageContent: 'noVhd' }, 'ARCHIVE_INVALID', /no \.vhd/],
    ['two VHDs', { imageContent: 'twoVhds' }, 'ARCHIVE_INVALID', /two VHDs/],
    ['a nested VHD', { imageContent: 'nested' }, 'ARCHIVE_INVALID', /nested/],
    ['a truncated gzip', { truncateAt: 0.6 }, 'ARCHIVE_INVALID', /gzip|tar/],
    ['a wrong stemcell.MF sha1', { wrongManifestSha1: true }, 'CHECKSUM_MISMATCH', /sha1/],
    ['a dynamic VHD', { dynamicVhd: true }, 'VHD_INVALID', /dynamic/],
  ])('refuses %s', async (_name, opts, code, message) => {
    const f = makeStemcell({ vhdMiB: 8, ...opts });
    const e = await failure(extract(f.tgz));
    expect(e.code).toBe(code);
    expect(e.message).toMatch(message);
  });

  it('refuses a dynamic VHD before its consumer has read past the head', async () => {
    const f = makeStemcell({ vhdMiB: 16, dynamicVhd: true });
    let received = 0;
    const e = await failure(
      extractStemcell(chunked(f.tgz), {
        onVhd: async (entry) => {
          for await (const c of entry) received += (c as Buffer).length;
        },
      }),
    );
    expect(e.code).toBe('VHD_INVALID');
    expect(received).toBeLessThan(1024 * 1024);
  });

  it('refuses input that is not gzip, and a tar with no stemcell.MF', async () => {
    expect((await failure(extract(Buffer.from('<html>not found</html>')))).code).toBe('ARCHIVE_INVALID');
    const f = makeStemcell({ vhdMiB: 8 });
    const noMf = gzipSync(tarBytes([{ name: 'image', data: f.image }]));
    expect((await failure(extract(noMf))).message).toMatch(/no stemcell\.MF/);
  });

  it('caps stemcell.MF at 1 MiB', async () => {
    const f = makeStemcell({ vhdMiB: 8 });
    const big = Buffer.concat([Buffer.from(f.manifestText), Buffer.alloc(1024 * 1024, 0x23)]);
    const tgz = gzipSync(
      tarBytes([
        { name: 'stemcell.MF', data: big },
        { name: 'image', data: f.image },
      ]),
    );
    expect((await failure(extract(tgz))).message).toMatch(/stemcell\.MF is \d+ bytes/);
  });

  it('passes an error of the input through', async () => {
    const f = makeStemcell({ vhdMiB: 8 });
    const input = new Readable({ read() {} });
    input.push(f.tgz.subarray(0, 100_000));
    setImmediate(() => input.destroy(new Error('connection reset')));
    await expect(extractStemcell(input, { onVhd: async (e) => void (await buffer(e)) })).rejects.toThrow(
      'connection reset',
    );
  });

  it('stops on abort', async () => {
    const f = makeStemcell({ vhdMiB: 8 });
    const ac = new AbortController();
    const p = extractStemcell(chunked(f.tgz, 4096), {
      signal: ac.signal,
      onVhd: async (entry) => {
        ac.abort();
        await buffer(entry);
      },
    });
    await expect(p).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('holds the input back while the VHD consumer is not reading', async () => {
    const f = makeStemcell({ vhdMiB: 16 });
    let pulled = 0;
    const input = chunked(f.tgz, 16 * 1024);
    input.on('data', (c: Buffer) => (pulled += c.length));
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    let stalledAt = 0;
    const p = extractStemcell(input, {
      onVhd: async (entry) => {
        await released;
        return void (await buffer(entry));
      },
    });
    // Let the pipeline fill every buffer it has; it must then stop pulling.
    for (let last = -1; last !== pulled;) {
      last = pulled;
      await sleep(50);
    }
    stalledAt = pulled;
    release();
    const result = await p;
    expect(result.vhdSize).toBe(f.vhd.length);
    expect(pulled).toBe(f.tgz.length);
    expect(stalledAt).toBeGreaterThan(0);
    expect(stalledAt).toBeLessThan(f.tgz.length / 2);
  });
});

describe('parseManifest', () => {
  it('keeps versions as written and rejects what is not a manifest', () => {
    const m = parseManifest(`name: s\nversion: 1.680\nsha1: ${'a'.repeat(40)}\ncloud_properties: {}\n`);
    expect(m.version).toBe('1.680');
    expect(m.operatingSystem).toBeUndefined();
    for (const text of [
      '- a list',
      'name: s',
      `name: s\nversion: '1'\nsha1: nothex\ncloud_properties: {}`,
      ': [',
    ]) {
      expect(() => parseManifest(text)).toThrow(expect.objectContaining({ code: 'ARCHIVE_INVALID' }));
    }
  });

  it('refuses alias bombs and unresolved aliases as ARCHIVE_INVALID, not as a fault to retry', () => {
    // Found by the property test (manifest.property.test.ts): the YAML library threw a plain ReferenceError.
    const bomb = [
      'a0: &a0 [x, x, x, x, x, x, x, x, x]',
      'a1: &a1 [*a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0, *a0]',
      'a2: &a2 [*a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1, *a1]',
    ].join('\n');
    for (const text of [bomb, 'name: *nowhere']) {
      expect(() => parseManifest(text)).toThrow(
        expect.objectContaining({ code: 'ARCHIVE_INVALID', permanent: true }),
      );
    }
  });
});
