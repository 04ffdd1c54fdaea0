/**
 * Small stemcells made in memory for tests: a fixed VHD (random regions between long zero runs,
 * some straddling 64 KiB and 4 MiB boundaries) in `image` (a tgz of root.vhd) in the outer tgz
 * beside stemcell.MF, packages.txt and dev_tools_file_list.txt, laid out as the stemcell builder
 * does. Each fault option breaks one thing the mirror must refuse.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { Header, Pax } from 'tar';

export interface StemcellFixtureOptions {
  /** Virtual disk size in MiB (≥ 8); the VHD file is this plus the 512-byte footer. */
  vhdMiB?: number;
  seed?: string;
  series?: string;
  version?: string;
  /** stemcell.MF before `image`, as the stemcell builder writes it (default: after). */
  mfFirst?: boolean;
  /** macOS `._*` companions in both tarballs (one of them `._root.vhd`). */
  appleDouble?: boolean;
  /** pax extended headers before every entry, and a global one first. */
  pax?: boolean;
  /** Disk type 3 with the footer copy at offset 0. */
  dynamicVhd?: boolean;
  badFooterChecksum?: boolean;
  /** The tar entry holds 1 MiB more than the footer declares. */
  footerSizeMismatch?: boolean;
  missingImage?: boolean;
  wrongManifestSha1?: boolean;
  /** Cut the outer tgz at this share of its length (0 < x < 1). */
  truncateAt?: number;
  /** Extra stemcell.MF `cloud_properties` lines, e.g. `{ generation: 'gen2' }`. */
  cloudProperties?: Record<string, string>;
  /** Variations of `image`'s content. */
  imageContent?: 'twoVhds' | 'noVhd' | 'nested';
}

export interface StemcellFixture {
  tgz: Buffer;
  /** Of `tgz`, as bosh.io publishes them. */
  sha256: string;
  sha1: string;
  vhd: Buffer;
  image: Buffer;
  imageSha1: string;
  imageSha256: string;
  manifestText: string;
  series: string;
  version: string;
  /** Non-zero bytes of the VHD counted in whole 64 KiB runs (what a sparse upload must send). */
  nonZeroRunBytes: number;
  /** Offsets [start, end) of the zero gaps at least 1 MiB long. */
  bigZeroGaps: Array<{ start: number; end: number }>;
}

const MIB = 1024 * 1024;
const KIB = 1024;
const EPOCH = 1_700_000_000;

/** Deterministic noise: AES-CTR over zeros, keyed by the seed. */
function noise(seed: string, length: number): Buffer {
  const key = createHash('sha256').update(seed).digest();
  const cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  return Buffer.concat([cipher.update(Buffer.alloc(length)), cipher.final()]);
}

function footerChecksum(f: Buffer): number {
  let sum = 0;
  for (let i = 0; i < 512; i++) if (i < 64 || i >= 68) sum += f[i]!;
  return ~sum >>> 0;
}

/** A VHD footer as qemu-img writes it for `-O vpc -o subformat=fixed`. */
export function makeVhdFooter(currentSize: number, diskType = 2, seed = 'footer'): Buffer {
  const f = Buffer.alloc(512);
  f.write('conectix', 0, 'latin1');
  f.writeUInt32BE(2, 8);
  f.writeUInt32BE(0x00010000, 12);
  f.writeBigUInt64BE(diskType === 2 ? 0xffffffffffffffffn : 512n, 16);
  f.writeUInt32BE(EPOCH - 946_684_800, 24);
  f.write('qem2', 28, 'latin1');
  f.writeUInt32BE(0x00050003, 32);
  f.write('Wi2k', 36, 'latin1');
  f.writeBigUInt64BE(BigInt(currentSize), 40);
  f.writeBigUInt64BE(BigInt(currentSize), 48);
  const sectors = Math.floor(currentSize / 512);
  f.writeUInt16BE(Math.min(65535, Math.floor(sectors / (16 * 63))), 56);
  f.writeUInt8(16, 58);
  f.writeUInt8(63, 59);
  f.writeUInt32BE(diskType, 60);
  noise(seed, 16).copy(f, 68);
  f.writeUInt32BE(footerChecksum(f), 64);
  return f;
}

/** Data regions [offset, length] for a disk of `size` bytes; the rest stays zero. */
function regions(size: number): Array<[number, number]> {
  return [
    [0, 4 * KIB], // partition table and boot code
    [64 * KIB - 1000, 4000], // straddles a 64 KiB boundary
    [4 * MIB - 70 * KIB, 200 * KIB], // straddles the first 4 MiB boundary
    [5 * MIB + 12_345, 1], // one byte alone in its run
    [size / 2 + 3 * KIB, Math.min(5 * MIB, size / 2 - 2 * MIB)], // more than one Put Page
    [size - 256 * KIB, 64 * KIB], // near the end, run aligned
  ];
}

export function makeVhd(opts: {
  vhdMiB?: number;
  seed?: string;
  dynamic?: boolean;
  extraMiB?: number;
}): Buffer {
  const size = (opts.vhdMiB ?? 16) * MIB;
  if (size < 8 * MIB) throw new Error('vhdMiB must be at least 8');
  const data = size + (opts.extraMiB ?? 0) * MIB;
  const vhd = Buffer.alloc(data + 512);
  const seed = opts.seed ?? 'stemcell';
  for (const [i, [offset, length]] of regions(size).entries()) {
    noise(`${seed}/${i}`, length).copy(vhd, offset);
  }
  const footer = makeVhdFooter(size, opts.dynamic ? 3 : 2, seed);
  footer.copy(vhd, data);
  if (opts.dynamic) footer.copy(vhd, 0);
  return vhd;
}

export function nonZeroRunBytes(buf: Buffer, run = 64 * KIB): number {
  const zeros = Buffer.alloc(run);
  let total = 0;
  for (let off = 0; off < buf.length; off += run) {
    const chunk = buf.subarray(off, off + run);
    if (!chunk.equals(zeros.subarray(0, chunk.length))) total += chunk.length;
  }
  return total;
}

function zeroGaps(buf: Buffer, min: number): Array<{ start: number; end: number }> {
  const gaps: Array<{ start: number; end: number }> = [];
  const page = Buffer.alloc(512);
  let start = -1;
  for (let off = 0; off <= buf.length; off += 512) {
    const zero = off < buf.length && buf.subarray(off, off + 512).equals(page);
    if (zero && start < 0) start = off;
    if (!zero && start >= 0) {
      if (off - start >= min) gaps.push({ start, end: off });
      start = -1;
    }
  }
  return gaps;
}

export interface TarFile {
  name: string;
  data: Buffer;
  type?: 'File' | 'Directory';
}

/** A tar archive in memory, ustar headers from the tar package, optionally with pax headers. */
export function tarBytes(files: TarFile[], opts: { pax?: boolean } = {}): Buffer {
  const parts: Buffer[] = [];
  if (opts.pax)
    parts.push(new Pax({ comment: 'made by a test', mtime: new Date(EPOCH * 1000) }, true).encode());
  for (const f of files) {
    const type = f.type ?? 'File';
    const mtime = new Date(EPOCH * 1000);
    if (opts.pax) parts.push(new Pax({ path: f.name, mtime, size: f.data.length }, false).encode());
    const h = new Header({
      path: f.name,
      mode: type === 'Directory' ? 0o755 : 0o644,
      uid: 0,
      gid: 0,
      uname: 'root',
      gname: 'root',
      size: type === 'Directory' ? 0 : f.data.length,
      mtime,
      type,
    });
    h.encode();
    parts.push(h.block!, f.data, Buffer.alloc((512 - (f.data.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export function manifestYaml(m: {
  series: string;
  version: string;
  sha1: string;
  diskMiB: number;
  cloudProperties?: Record<string, string>;
}): string {
  const extra = Object.entries(m.cloudProperties ?? {})
    .map(([k, v]) => `  ${k}: ${v}\n`)
    .join('');
  const os = m.series.replace(/^bosh-[a-z0-9]+-[a-z0-9]+-/, '').replace(/-go_agent$/, '');
  return `---
name: ${m.series}
version: '${m.version}'
bosh_protocol: '1'
api_version: 3
sha1: ${m.sha1}
operating_system: ${os}
stemcell_formats:
- azure-vhd
cloud_properties:
  name: ${m.series}
  version: '${m.version}'
  infrastructure: azure
  hypervisor: hyperv
  disk: ${m.diskMiB}
  disk_format: vhd
  container_format: bare
  os_type: linux
  os_distro: ${os.split('-')[0]}
  architecture: x86_64
  root_device_name: "/dev/sda1"
${extra}`;
}

const sha = (alg: string, b: Buffer): string => createHash(alg).update(b).digest('hex');

export function makeStemcell(opts: StemcellFixtureOptions = {}): StemcellFixture {
  const series = opts.series ?? 'bosh-azure-hyperv-ubuntu-jammy-go_agent';
  const version = opts.version ?? '1.682';
  const vhdMiB = opts.vhdMiB ?? 16;
  const seed = opts.seed ?? `${series}/${version}`;
  const vhd = makeVhd({
    vhdMiB,
    seed,
    dynamic: opts.dynamicVhd ?? false,
    extraMiB: opts.footerSizeMismatch ? 1 : 0,
  });
  if (opts.badFooterChecksum) vhd[vhd.length - 512 + 64]! ^= 0xff;

  const appleDouble = (name: string): TarFile => ({ name: `._${name}`, data: noise(`apple/${name}`, 4096) });
  const innerFiles: TarFile[] = [];
  if (opts.appleDouble) innerFiles.push(appleDouble('root.vhd'));
  if (opts.imageContent === 'nested') {
    innerFiles.push({ name: 'disk/', data: Buffer.alloc(0), type: 'Directory' });
    innerFiles.push({ name: 'disk/root.vhd', data: vhd });
  } else if (opts.imageContent === 'noVhd') {
    innerFiles.push({ name: 'root.img', data: vhd });
  } else {
    innerFiles.push({ name: 'root.vhd', data: vhd });
    if (opts.imageContent === 'twoVhds') innerFiles.push({ name: 'second.vhd', data: vhd });
  }
  const image = gzipSync(tarBytes(innerFiles, { pax: opts.pax ?? false }), { level: 1 });
  const imageSha1 = sha('sha1', image);

  const manifestText = manifestYaml({
    series,
    version,
    sha1: opts.wrongManifestSha1 ? sha('sha1', Buffer.from('something else')) : imageSha1,
    diskMiB: vhdMiB,
    cloudProperties: opts.cloudProperties,
  });
  const manifest: TarFile = { name: 'stemcell.MF', data: Buffer.from(manifestText) };
  const packages: TarFile = {
    name: 'packages.txt',
    data: Buffer.from('ii  bash 5.1-6ubuntu1 amd64\n'.repeat(50)),
  };
  const devTools: TarFile = {
    name: 'dev_tools_file_list.txt',
    data: Buffer.from('/usr/bin/gcc\n/usr/bin/make\n'),
  };
  const imageFile: TarFile[] = opts.missingImage ? [] : [{ name: 'image', data: image }];
  const ad = opts.appleDouble ? [appleDouble('image'), appleDouble('stemcell.MF')] : [];
  const outer = opts.mfFirst
    ? [manifest, ...ad, ...imageFile, packages, devTools]
    : [devTools, ...ad, ...imageFile, packages, manifest];
  let tgz = gzipSync(tarBytes(outer, { pax: opts.pax ?? false }), { level: 1 });
  if (opts.truncateAt !== undefined) tgz = tgz.subarray(0, Math.floor(tgz.length * opts.truncateAt));

  return {
    tgz,
    sha256: sha('sha256', tgz),
    sha1: sha('sha1', tgz),
    vhd,
    image,
    imageSha1,
    imageSha256: sha('sha256', image),
    manifestText,
    series,
    version,
    nonZeroRunBytes: nonZeroRunBytes(vhd),
    bigZeroGaps: zeroGaps(vhd, MIB),
  };
}
