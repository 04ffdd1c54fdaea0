/**
 * DESIGN §7's last target: a mirror killed with SIGKILL mid-upload, then started again, re-uploads
 * at most one checkpoint window and ends with a blob byte-identical to the VHD. The kill comes half
 * a window after the first checkpoint, so the blob then holds pages the job does not know about.
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { TableClient } from '@azure/data-tables';
import { BlobServiceClient } from '@azure/storage-blob';
import { JOBS_TABLE } from '../src/lib/clients';
import { JobStore } from '../src/lib/jobs';
import { listPageRanges } from '../src/lib/pageblob';
import { startAzurite } from '../src/local/azurite';
import type { FakeBoshIo } from '../test/fakes/boshio';
import { overlapBytes, rangeBytes, type VhdScan } from './floors';
import { runMirror } from './mirror';
import type { BenchStemcell } from './stemcells';

/** The transfer's checkpoint window (src/lib/transfer.ts default). */
export const CHECKPOINT_WINDOW = 256 * 1024 * 1024;

export interface ResumeResult {
  /** VHD offset reached (from the progress lines) when the child was killed. */
  killedAtBytes: number;
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
    let firstCheckpoint: number | undefined;
    let killedAt = 0;
    const first = await runMirror({
      childScript: c.childScript,
      series: s.series,
      version: s.version,
      settings,
      workDir: join(c.scratch, 'run', `kill-${s.sizeMiB}`),
      onStderrLine: (line, kill) => {
        if (firstCheckpoint === undefined && line.includes('"transfer.checkpoint"')) {
          const ev = JSON.parse(line) as { watermark?: number };
          firstCheckpoint = ev.watermark;
        }
        const m = /^transfer (\d+)%/.exec(line);
        if (!m || firstCheckpoint === undefined || killedAt > 0) return;
        const at = (Number(m[1]) / 100) * scan.vhdBytes;
        if (at >= firstCheckpoint + CHECKPOINT_WINDOW / 2) {
          killedAt = Math.round(at);
          kill();
        }
      },
    });
    if (first.signal !== 'SIGKILL') {
      throw new Error(`the first pass was not killed (exit ${first.exitCode}); no checkpoint came in time`);
    }
    const jobs = new JobStore(
      TableClient.fromConnectionString(azurite.connectionString, JOBS_TABLE, {
        allowInsecureConnection: true,
      }),
    );
    const killedJob = await jobs.get(s.series, s.version);
    const container = BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(
      'stemcell',
    );
    const blob = container.getPageBlobClient(killedJob?.blobName ?? `${s.series}/${s.version}.vhd`);
    const present = overlapBytes(await listPageRanges(blob), scan.nonZeroRanges);
    c.say(
      `  killed at ~${(killedAt / 2 ** 20).toFixed(0)} MiB; job watermark ${((killedJob?.watermark ?? 0) / 2 ** 20).toFixed(0)} MiB; ` +
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
      killedAtBytes: killedAt,
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

async function blobSha256(blob: {
  download(offset?: number): Promise<{ readableStreamBody?: NodeJS.ReadableStream }>;
}) {
  const hash = createHash('sha256');
  const body = (await blob.download(0)).readableStreamBody;
  if (!body) throw new Error('the blob download has no body');
  for await (const chunk of body) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
