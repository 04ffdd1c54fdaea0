import { describe, expect, it } from 'vitest';
import { isMirrorError } from '../../../src/lib/core/errors';
import {
  checkVhdEntrySize,
  checkVhdHead,
  footerChecksum,
  MIB,
  parseVhdFooter,
  validateFixedVhd,
} from '../../../src/lib/stemcell/vhd';
import { makeVhdFooter } from '../../support/stemcell-fixture';

function vhdError(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    if (isMirrorError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error('expected a MirrorError');
}

/** Edits a valid footer and fixes its checksum again, so only the edited field is wrong. */
function edited(size: number, edit: (f: Buffer) => void): Buffer {
  const f = makeVhdFooter(size);
  edit(f);
  f.writeUInt32BE(footerChecksum(f), 64);
  return f;
}

describe('parseVhdFooter / validateFixedVhd', () => {
  const size = 64 * MIB;

  it('accepts a fixed VHD footer and reads its fields', () => {
    const f = validateFixedVhd(makeVhdFooter(size), size + 512);
    expect(f.cookie).toBe('conectix');
    expect(f.diskType).toBe(2);
    expect(f.currentSize).toBe(size);
    expect(f.dataOffset).toBe(0xffffffffffffffffn);
    expect(f.checksum).toBe(footerChecksum(makeVhdFooter(size)));
    expect(parseVhdFooter(makeVhdFooter(size)).geometry.heads).toBe(16);
  });

  it('refuses a missing cookie', () => {
    const e = vhdError(() =>
      validateFixedVhd(
        edited(size, (f) => f.write('notavhd!', 0, 'latin1')),
        size + 512,
      ),
    );
    expect(e.code).toBe('VHD_INVALID');
    expect(e.message).toMatch(/cookie/);
  });

  it.each([
    [3, /dynamic/],
    [4, /differencing/],
  ])('refuses disk type %i and names it', (type, name) => {
    const e = vhdError(() =>
      validateFixedVhd(
        edited(size, (f) => f.writeUInt32BE(type, 60)),
        size + 512,
      ),
    );
    expect(e.code).toBe('VHD_INVALID');
    expect(e.message).toMatch(name);
  });

  it('refuses a wrong checksum', () => {
    const f = makeVhdFooter(size);
    f[100] = 7; // not covered by the stored checksum any more
    expect(vhdError(() => validateFixedVhd(f, size + 512)).message).toMatch(/checksum/);
  });

  it('refuses a size that disagrees with the file', () => {
    const e = vhdError(() => validateFixedVhd(makeVhdFooter(size), size + MIB + 512));
    expect(e.code).toBe('VHD_INVALID');
    expect(e.message).toMatch(/declares/);
  });

  it('refuses a size that is not a whole number of MiB', () => {
    const odd = size + 512;
    const e = vhdError(() => validateFixedVhd(makeVhdFooter(odd), odd + 512));
    expect(e.message).toMatch(/MiB/);
  });

  it('refuses a data offset on a fixed disk', () => {
    const e = vhdError(() =>
      validateFixedVhd(
        edited(size, (f) => f.writeBigUInt64BE(512n, 16)),
        size + 512,
      ),
    );
    expect(e.message).toMatch(/data offset/);
  });

  it('refuses a footer of the wrong length', () => {
    expect(vhdError(() => parseVhdFooter(Buffer.alloc(511))).code).toBe('VHD_INVALID');
  });
});

describe('checkVhdEntrySize', () => {
  it('accepts whole MiB plus the footer, up to 2 TiB', () => {
    expect(() => checkVhdEntrySize(MIB + 512)).not.toThrow();
    expect(() => checkVhdEntrySize(2 * 1024 * 1024 * MIB + 512)).not.toThrow();
  });

  it.each([0, 512, MIB, MIB + 511, MIB + 1024, 2 * 1024 * 1024 * MIB + MIB + 512])('refuses %i', (n) => {
    expect(vhdError(() => checkVhdEntrySize(n)).code).toBe('VHD_INVALID');
  });
});

describe('checkVhdHead', () => {
  it('refuses a stream that starts with a footer copy (dynamic VHD)', () => {
    const head = makeVhdFooter(64 * MIB, 3);
    expect(vhdError(() => checkVhdHead(head)).message).toMatch(/dynamic/);
  });

  it('lets a disk that starts with its first sector through', () => {
    const mbr = Buffer.alloc(512);
    mbr.writeUInt16BE(0x55aa, 510);
    expect(() => checkVhdHead(mbr)).not.toThrow();
  });
});
