/**
 * DESIGN §7's last target: a mirror killed with SIGKILL mid-upload, then started again, re-uploads
 * at most one checkpoint window and ends with a blob byte-identical to the VHD. The kill comes with
 * half a window of pages past the first checkpoint, so the blob then holds pages the job does not vouch for.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { TableClient } from '@azure/data-tables';
import { BlobServiceClient } from '@azure/storage-blob';
import { JOBS_TABLE } from '../src/lib/azure/storage-clients';
import { JobStore } from '../src/lib/jobs/store';
import { listPageRanges, type PageRange } from '../src/lib/azure/pageblob';
import { startAzurite } from '../src/local/azurite';
import type { FakeBoshIo } from '../test/fakes/boshio';
import { overlapBytes, rangeBytes, type VhdScan } from './floors';
import { runMirror } from './mirror';
import type { BenchStemcell } from './stemcells';

/** The transfer's checkpoint window (src/lib/mirror/transfer-pass.ts default). */
export const CHECKPOINT_WINDOW = 256 * 1024 * 1024;

export interface ResumeResult {
  /** Non-zero bytes above the first checkpoint seen in the blob when the kill was sent. */
  uploadedPastCheckpointAtKill: number;
  /** The job's watermark as the killed pass left it. */
  watermarkAtKill: number;
  /** Non-zero VHD bytes already in the blob when the second pass began. */
  presentAtKillBytes: number;
  /** Put Page bytes of the second pass. */
  secondPassSentBytes: number;
  /** Of those, bytes that were already in the blob: the cost of the kill. */
  reuploadedBytes: number;
  checkpointWindowBytes: number;
  withinOneWindow: boolean;
  byteIdentical: boolean;
  secondPassSeconds: number;
}

interface Ctx {
  stemcell: BenchStemcell;
  scan: VhdScan;
  childScript: string;
  scratch: string;
  boshio: FakeBoshIo;
  say: (s: string) => void;
}

export async function resumeAfterKill(c: Ctx): Promise<ResumeResult> {
  const { stemcell: s, scan } = c;
  c.say(`  resume: kill the mirror mid-upload, start it again (fresh Azurite)`);
  const azurite = await startAzurite();
  try {
    const settings = {
      AzureWebJobsStorage: azurite.connectionString,
      BASM_BOSH_IO_URL: c.boshio.url,
      BASM_STEMCELL_SERIES: s.series,
      // The killed pass leaves its lease behind; a short one keeps the restart from waiting long.
      BASM_LEASE_SECONDS: '3',
    };
    const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(
      'stemcell',
    );
    const blob = container.getPageBlobClient(`${s.series}/${s.version}.vhd`);
    let firstCheckpoint: number | undefined;
    let kill: (() => void) | undefined;
    let finished = false;
    let killedAt = 0;
    const firstPass = runMirror({
      childScript: c.childScript,
      series: s.series,
      version: s.version,
      settings,
      workDir: join(c.scratch, 'run', `kill-${s.sizeMiB}`),
      onStderrLine: (line, k) => {
        kill = k;
        if (firstCheckpoint === undefined && line.includes('"transfer.checkpoint"')) {
          firstCheckpoint = (JSON.parse(line) as { watermark?: number }).watermark;
        }
      },
    });
    // The worst moment to die is with many pages in the blob that no checkpoint vouches for: wait
    // for half a window of them (or half of what is left) above the first checkpoint, then kill.
    const watcher = (async () => {
      while (!finished && killedAt === 0) {
        await new Promise((r) => setTimeout(r, 150));
        if (firstCheckpoint === undefined || !kill) continue;
        const above = [{ start: firstCheckpoint, end: scan.vhdBytes }];
        const left = overlapBytes(scan.nonZeroRanges, above);
        const ranges = await listPageRanges(blob).catch(() => []);
        const uploadedAbove = overlapBytes(overlapRanges(ranges, above), scan.nonZeroRanges);
        if (uploadedAbove >= Math.min(CHECKPOINT_WINDOW / 2, left / 2)) {
          killedAt = uploadedAbove;
          kill();
        }
      }
    })();
    const first = await firstPass;
    finished = true;
    await watcher;
    if (first.signal !== 'SIGKILL') {
      throw new Error(`the first pass was not killed (exit ${first.exitCode}); no checkpoint came in time`);
    }
    const jobs = new JobStore(
      TableClient.fromConnectionString(azurite.connectionString, JOBS_TABLE, {
        allowInsecureConnection: true,
      }),
    );
    const killedJob = await jobs.get(s.series, s.version);
    if (killedJob?.blobName !== undefined && killedJob.blobName !== blob.name)
      throw new Error(`the job stages ${killedJob.blobName}, not ${blob.name}`);
    // Azurite finishes the Put Pages whose bodies reached it before the kill: count the pages once
    // they stop changing, or a late one would read as sent twice.
    const present = await settledPresentBytes(blob, scan.nonZeroRanges);
    c.say(
      `  killed with ${(killedAt / 2 ** 20).toFixed(0)} MiB past the first checkpoint; job watermark ${((killedJob?.watermark ?? 0) / 2 ** 20).toFixed(0)} MiB; ` +
        `${(present / 2 ** 20).toFixed(0)} MiB of pages already in the blob`,
    );

    const second = await runMirror({
      childScript: c.childScript,
      series: s.series,
      version: s.version,
      settings,
      workDir: join(c.scratch, 'run', `resume-${s.sizeMiB}`),
    });
    if (second.exitCode !== 0) throw new Error(`the resumed mirror failed: ${second.stderrTail}`);
    const job = await jobs.get(s.series, s.version);
    if (job?.status !== 'staged') throw new Error(`the resumed job ended ${job?.status ?? 'missing'}`);
    const sent = second.passSentBytes ?? job.sentBytes;
    const reuploaded = sent - (scan.nonZeroBytes64k - present);
    const finalRanges = await listPageRanges(blob);
    const identical =
      overlapBytes(finalRanges, scan.nonZeroRanges) === scan.nonZeroBytes64k &&
      (await blobSha256(blob)) === scan.sha256;
    c.say(
      `  resumed in ${second.seconds.toFixed(1)} s: sent ${sent} B, re-uploaded ${reuploaded} B ` +
        `(window ${CHECKPOINT_WINDOW} B); byte-identical ${identical}; pages ${rangeBytes(finalRanges)} B`,
    );
    return {
      uploadedPastCheckpointAtKill: killedAt,
      watermarkAtKill: killedJob?.watermark ?? 0,
      presentAtKillBytes: present,
      secondPassSentBytes: sent,
      reuploadedBytes: reuploaded,
      checkpointWindowBytes: CHECKPOINT_WINDOW,
      withinOneWindow: reuploaded <= CHECKPOINT_WINDOW,
      byteIdentical: identical,
      secondPassSeconds: Math.round(second.seconds * 1000) / 1000,
    };
  } finally {
    await azurite.stop();
  }
}

async function settledPresentBytes(
  blob: Parameters<typeof listPageRanges>[0],
  nonZero: readonly PageRange[],
): Promise<number> {
  let last = -1;
  for (let i = 0; i < 20; i++) {
    const now = overlapBytes(await listPageRanges(blob), nonZero);
    if (now === last) return now;
    last = now;
    await new Promise((r) => setTimeout(r, 500));
  }
  return last;
}

/** `ranges` clipped to `within` (both sorted and merged). */
function overlapRanges(ranges: readonly PageRange[], within: readonly PageRange[]): PageRange[] {
  const out: PageRange[] = [];
  for (const r of ranges)
    for (const w of within) {
      const start = Math.max(r.start, w.start);
      const end = Math.min(r.end, w.end);
      if (end > start) out.push({ start, end });
    }
  return out;
}

export async function blobSha256(blob: {
  download(offset?: number): Promise<{ readableStreamBody?: NodeJS.ReadableStream }>;
}) {
  const hash = createHash('sha256');
  const body = (await blob.download(0)).readableStreamBody;
  if (!body) throw new Error('the blob download has no body');
  for await (const chunk of body) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
