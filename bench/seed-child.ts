/**
 * The earlier Python mirror's approach, rebuilt here only to be measured beside ours under the same
 * caps: download the whole archive to a temporary file, extract the outer tgz to disk, extract the
 * `image` tgz to disk, then upload the VHD as a page blob in 4 MiB chunks, skipping chunks that are
 * all zeros (what the SDK's page-blob upload does). Started by the bench in a process of its own;
 * prints one JSON line (SeedReport) on stdout.
 */
import { createWriteStream } from 'node:fs';
import { mkdir, open, readdir, rm, stat } from 'node:fs/promises';
import { get } from 'node:http';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { BlobServiceClient } from '@azure/storage-blob';
import { x as extract } from 'tar';

export interface SeedInput {
  downloadUrl: string;
  connectionString: string;
  container: string;
  blobName: string;
  /** The empty folder that stands for the temporary disk. */
  workDir: string;
  /** 4 MiB chunks in flight. */
  parallelism: number;
}

export interface SeedReport {
  seconds: number;
  phases: { download: number; extractOuter: number; extractImage: number; upload: number };
  archiveBytes: number;
  vhdBytes: number;
  /** Most bytes the files in the temporary folder held at once (all three are there at the end). */
  tempDiskBytes: number;
  sentBytes: number;
  puts: number;
}

const CHUNK = 4 * 1024 * 1024;
const ZEROS = Buffer.alloc(CHUNK);

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    total += e.isDirectory() ? await folderBytes(p) : (await stat(p)).size;
  }
  return total;
}

async function findFile(dir: string, test: (name: string) => boolean): Promise<string> {
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      const found = await findFile(p, test).catch(() => undefined);
      if (found) return found;
    } else if (test(e.name)) return p;
  }
  throw new Error(`nothing matching in ${dir}`);
}

function download(url: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`GET ${url} answered ${res.statusCode}`));
        return;
      }
      let n = 0;
      res.on('data', (c: Buffer) => (n += c.length));
      pipeline(res, createWriteStream(path)).then(() => resolve(n), reject);
    }).on('error', reject);
  });
}

async function upload(
  input: SeedInput,
  vhdPath: string,
  vhdBytes: number,
): Promise<{ sentBytes: number; puts: number }> {
  const blob = BlobServiceClient.fromConnectionString(input.connectionString)
    .getContainerClient(input.container)
    .getPageBlobClient(input.blobName);
  await blob.create(vhdBytes);
  const fh = await open(vhdPath, 'r');
  let next = 0;
  let sentBytes = 0;
  let puts = 0;
  const worker = async (): Promise<void> => {
    const buf = Buffer.allocUnsafe(CHUNK);
    for (;;) {
      const offset = next;
      if (offset >= vhdBytes) return;
      next += CHUNK;
      const length = Math.min(CHUNK, vhdBytes - offset);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      if (bytesRead !== length) throw new Error(`short read at ${offset}`);
      const chunk = buf.subarray(0, length);
      if (chunk.equals(ZEROS.subarray(0, length))) continue;
      await blob.uploadPages(chunk, offset, length);
      sentBytes += length;
      puts++;
    }
  };
  try {
    await Promise.all(Array.from({ length: input.parallelism }, worker));
  } finally {
    await fh.close();
  }
  return { sentBytes, puts };
}

export async function seedApproach(input: SeedInput): Promise<SeedReport> {
  await rm(input.workDir, { recursive: true, force: true });
  const outer = join(input.workDir, 'stemcell');
  const image = join(input.workDir, 'image');
  await mkdir(outer, { recursive: true });
  await mkdir(image, { recursive: true });
  const tgz = join(input.workDir, 'stemcell.tgz');

  const t0 = performance.now();
  const archiveBytes = await download(input.downloadUrl, tgz);
  const t1 = performance.now();
  await extract({ file: tgz, cwd: outer, strict: true });
  const t2 = performance.now();
  await extract({ file: await findFile(outer, (n) => n === 'image'), cwd: image, strict: true });
  const t3 = performance.now();
  const tempDiskBytes = await folderBytes(input.workDir);
  const vhdPath = await findFile(image, (n) => /\.vhd$/i.test(n));
  const vhdBytes = (await stat(vhdPath)).size;
  const sent = await upload(input, vhdPath, vhdBytes);
  const t4 = performance.now();
  await rm(input.workDir, { recursive: true, force: true });
  const s = (a: number, b: number): number => Math.round(b - a) / 1000;
  return {
    seconds: s(t0, t4),
    phases: { download: s(t0, t1), extractOuter: s(t1, t2), extractImage: s(t2, t3), upload: s(t3, t4) },
    archiveBytes,
    vhdBytes,
    tempDiskBytes,
    ...sent,
  };
}

if (require.main === module) {
  const input = JSON.parse(process.argv[2] ?? '') as SeedInput;
  seedApproach(input).then(
    (r) => process.stdout.write(JSON.stringify(r) + '\n'),
    (e: unknown) => {
      process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 1;
    },
  );
}
