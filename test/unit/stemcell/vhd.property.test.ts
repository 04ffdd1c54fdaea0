/**
 * Properties of the VHD footer check: any 512 bytes and any file size give a footer Azure accepts
 * or VHD_INVALID, never another error; every fixed VHD of whole MiB is accepted, and changing any
 * single byte of its footer makes it refused.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MirrorError } from '../../../src/lib/core/errors';
import {
  checkVhdEntrySize,
  checkVhdHead,
  MAX_VHD_FILE_SIZE,
  MIB,
  validateFixedVhd,
  VHD_FOOTER_SIZE,
} from '../../../src/lib/stemcell/vhd';
import { makeVhdFooter } from '../../support/stemcell-fixture';

const RUNS = { numRuns: 400 };

function code(f: () => unknown): string | undefined {
  try {
    f();
    return undefined;
  } catch (e) {
    if (!(e instanceof MirrorError)) throw e;
    return e.code;
  }
}

const size = fc.oneof(
  fc.integer({ min: 1, max: 2 * 1024 * 1024 }).map((mib) => mib * MIB),
  fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
);

describe('VHD footer (property)', () => {
  it('any bytes and any size: accepted or VHD_INVALID', () => {
    const bytes = fc.oneof(
      fc.uint8Array({ minLength: 0, maxLength: 600 }).map((a) => Buffer.from(a)),
      fc
        .tuple(size, fc.uint8Array({ minLength: 512, maxLength: 512 }), fc.nat({ max: 511 }))
        .map(([s, noise, at]) => {
          const f = makeVhdFooter(s);
          f[at] = noise[at]!;
          return f;
        }),
    );
    fc.assert(
      fc.property(bytes, fc.oneof(size, fc.integer()), (footer, fileSize) => {
        expect([undefined, 'VHD_INVALID']).toContain(code(() => validateFixedVhd(footer, fileSize)));
      }),
      RUNS,
    );
  });

  it('accepts every fixed VHD of whole MiB, and refuses it once any footer byte changes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2 * 1024 * 1024 }),
        fc.nat({ max: VHD_FOOTER_SIZE - 1 }),
        fc.integer({ min: 1, max: 255 }),
        (mib, at, delta) => {
          const footer = makeVhdFooter(mib * MIB);
          const fileSize = mib * MIB + VHD_FOOTER_SIZE;
          expect(validateFixedVhd(footer, fileSize).currentSize).toBe(mib * MIB);
          footer[at] = (footer[at]! + delta) % 256;
          expect(code(() => validateFixedVhd(footer, fileSize))).toBe('VHD_INVALID');
        },
      ),
      RUNS,
    );
  });

  it('entry sizes: whole MiB plus the footer up to 2 TiB pass, everything else is VHD_INVALID', () => {
    const anySize = fc.oneof(
      size,
      size.map((s) => s + VHD_FOOTER_SIZE),
      fc.double(),
      fc.integer({ min: -1e6, max: 1e6 }),
    );
    fc.assert(
      fc.property(anySize, (s) => {
        const ok =
          Number.isSafeInteger(s) &&
          s > VHD_FOOTER_SIZE &&
          s <= MAX_VHD_FILE_SIZE &&
          (s - VHD_FOOTER_SIZE) % MIB === 0;
        expect(code(() => checkVhdEntrySize(s))).toBe(ok ? undefined : 'VHD_INVALID');
      }),
      RUNS,
    );
  });

  it('a disk head is refused only when it starts with a footer copy', () => {
    const head = fc.oneof(
      fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a)),
      fc
        .tuple(fc.integer({ min: 0, max: 5 }), fc.uint8Array({ maxLength: 600 }))
        .map(([type, rest]) => Buffer.concat([makeVhdFooter(MIB, type), Buffer.from(rest)])),
    );
    fc.assert(
      fc.property(head, (h) => {
        const startsWithFooter = h.length >= 8 && h.toString('latin1', 0, 8) === 'conectix';
        expect(code(() => checkVhdHead(h))).toBe(startsWithFooter ? 'VHD_INVALID' : undefined);
      }),
      RUNS,
    );
  });
});
