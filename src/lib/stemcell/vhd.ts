/**
 * The VHD footer: the last 512 bytes of a fixed VHD, the only metadata Azure reads. Azure accepts
 * only fixed VHDs whose virtual size is a whole number of MiB, so everything else is refused here,
 * before a gallery ever sees the blob.
 */
import { MirrorError } from '../core/errors';

export const VHD_FOOTER_SIZE = 512;
export const MIB = 1024 * 1024;
/** Azure's limit for a managed OS disk source, plus the footer. */
export const MAX_VHD_FILE_SIZE = 2 * 1024 * 1024 * MIB + VHD_FOOTER_SIZE;

const COOKIE = 'conectix';
const NO_DATA_OFFSET = 0xffffffffffffffffn;
const DISK_TYPES: Readonly<Record<number, string>> = {
  0: 'none',
  2: 'fixed',
  3: 'dynamic',
  4: 'differencing',
};

export interface VhdFooter {
  cookie: string;
  features: number;
  formatVersion: number;
  dataOffset: bigint;
  timestamp: number;
  creatorApplication: string;
  originalSize: number;
  currentSize: number;
  geometry: { cylinders: number; heads: number; sectorsPerTrack: number };
  diskType: number;
  checksum: number;
  uniqueId: string;
}

function invalid(message: string): MirrorError {
  return new MirrorError('VHD_INVALID', message);
}

function diskTypeName(type: number): string {
  return DISK_TYPES[type] ?? `unknown (${type})`;
}

/** Ones' complement of the byte sum of the footer, the checksum field itself left out. */
export function footerChecksum(footer: Buffer): number {
  let sum = 0;
  for (let i = 0; i < VHD_FOOTER_SIZE; i++) if (i < 64 || i >= 68) sum += footer[i] ?? 0;
  return ~sum >>> 0;
}

export function parseVhdFooter(buf: Buffer): VhdFooter {
  if (buf.length !== VHD_FOOTER_SIZE)
    throw invalid(`A VHD footer is ${VHD_FOOTER_SIZE} bytes, got ${buf.length}`);
  return {
    cookie: buf.toString('latin1', 0, 8),
    features: buf.readUInt32BE(8),
    formatVersion: buf.readUInt32BE(12),
    dataOffset: buf.readBigUInt64BE(16),
    timestamp: buf.readUInt32BE(24),
    creatorApplication: buf.toString('latin1', 28, 32),
    originalSize: Number(buf.readBigUInt64BE(40)),
    currentSize: Number(buf.readBigUInt64BE(48)),
    geometry: {
      cylinders: buf.readUInt16BE(56),
      heads: buf.readUInt8(58),
      sectorsPerTrack: buf.readUInt8(59),
    },
    diskType: buf.readUInt32BE(60),
    checksum: buf.readUInt32BE(64),
    uniqueId: buf.toString('hex', 68, 84),
  };
}

/** Validates the footer of a VHD file of `fileSize` bytes (footer included) as Azure would. */
export function validateFixedVhd(footerBytes: Buffer, fileSize: number): VhdFooter {
  const f = parseVhdFooter(footerBytes);
  if (f.cookie !== COOKIE)
    throw invalid(`The disk image has no VHD footer (cookie ${JSON.stringify(f.cookie)})`);
  if (f.diskType !== 2) {
    throw invalid(`The VHD is ${diskTypeName(f.diskType)}; Azure needs a fixed VHD (disk type 2)`);
  }
  const expected = footerChecksum(footerBytes);
  if (f.checksum !== expected) {
    throw invalid(`The VHD footer checksum is 0x${hex(f.checksum)}, computed 0x${hex(expected)}`);
  }
  if (f.dataOffset !== NO_DATA_OFFSET) {
    throw invalid(`A fixed VHD has no data offset, the footer says 0x${f.dataOffset.toString(16)}`);
  }
  if (f.currentSize !== fileSize - VHD_FOOTER_SIZE) {
    throw invalid(
      `The VHD footer declares ${f.currentSize} bytes but the image holds ${fileSize - VHD_FOOTER_SIZE}`,
    );
  }
  if (f.currentSize % MIB !== 0) throw invalid(`The VHD size ${f.currentSize} is not a whole number of MiB`);
  return f;
}

/** The early check on the tar entry's declared size, before any byte is uploaded. */
export function checkVhdEntrySize(size: number): void {
  if (!Number.isSafeInteger(size) || size <= VHD_FOOTER_SIZE)
    throw invalid(`The VHD entry size ${size} is too small`);
  if (size > MAX_VHD_FILE_SIZE) throw invalid(`The VHD entry size ${size} is larger than 2 TiB`);
  if (size % 512 !== 0) throw invalid(`The VHD entry size ${size} is not a multiple of 512`);
  if ((size - VHD_FOOTER_SIZE) % MIB !== 0) {
    throw invalid(`The VHD entry size ${size} is not a whole number of MiB plus the 512-byte footer`);
  }
}

/**
 * Dynamic and differencing VHDs start with a copy of their footer; a fixed VHD starts with the
 * disk's first sector. Checking the head refuses them before the upload, not after.
 */
export function checkVhdHead(head: Buffer): void {
  if (head.length < 8 || head.toString('latin1', 0, 8) !== COOKIE) return;
  const type = head.length >= 64 ? head.readUInt32BE(60) : 3;
  throw invalid(`The VHD is ${diskTypeName(type)} (it starts with a footer copy); Azure needs a fixed VHD`);
}

function hex(n: number): string {
  return n.toString(16).padStart(8, '0');
}
