/**
 * `npm run bench` (DESIGN §5, §7): builds realistic stemcells, serves them from a loopback bosh.io,
 * mirrors each into a fresh in-memory Azurite with the CLI in a child process, and measures in the
 * same run the two floors the mirror is held to. Progress goes to stderr; the last line of stdout
 * is one JSON object, `{ "results": [ … ] }`.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { TableClient } from '@azure/data-tables';
import { BlobServiceClient, type ContainerClient } from '@azure/storage-blob';
import { JOBS_TABLE } from '../src/lib/azure/storage-clients';
import { JobStore } from '../src/lib/jobs/store';
import { DEFAULT_PARALLELISM as PARALLELISM, listPageRanges } from '../src/lib/azure/pageblob';
import { startAzurite, type Azurite } from '../src/local/azurite';
import { startFakeBoshIo, type FakeBoshIo } from '../test/fakes/boshio';
import {
  decompressOnly,
  overlapBytes,
  rangeBytes,
  scanVhd,
  sharedKey,
  uploadOnly,
  type VhdScan,
} from './floors';
import { measureCapped, SINK_TARGET, type CappedResult } from './capped';
import { processCpuSeconds, runMirror, type MirrorRun } from './mirror';
import { resumeAfterKill, type ResumeResult } from './resume';
import { runSoak, type SoakResult } from './soak';
import {
  buildStemcell,
  ensureTools,
  JS_MAX_MIB,
  removeStemcell,
  type BenchStemcell,
  type Generator,
} from './stemcells';

export const TARGETS = {
  ratioToFloor: 1.3,
  peakRssMiB: 256,
  rssGrowth: 0.1,
  tempDiskBytes: 0,
  ratioToSinkLimit: SINK_TARGET,
} as const;
const MIB = 1024 * 1024;

export interface BenchOptions {
  sizes: number[];
  generator: 'auto' | Generator;
  install: boolean;
  keep: boolean;
  resume: 'auto' | 'off' | number;
  scratch: string;
  profile: boolean;
  rounds: number;
  /** Also run each size under production's caps (Put Page 60 MiB/s, download 100 MB/s). */
  caps: boolean;
  cappedRounds: number;
  soak: SoakOptionsIn | undefined;
  /** Only the soak: no per-size measurements. */
  soakOnly: boolean;
  repoRoot: string;
}

export interface SoakOptionsIn {
  sizeMiB: number;
  mirrors: number;
  requests: number;
  series: number;
}

export interface SizeResult {
  sizeMiB: number;
  generator: Generator;
  archiveBytes: number;
  vhdBytes: number;
  seconds: number;
  transferSeconds: number | null;
  decompressOnlySeconds: number;
  uploadOnlySeconds: number;
  ratioToFloor: number;
  nonZeroBytes64k: number;
  sentBytes: number;
  blobRangeBytes: number;
  peakRssMiB: number;
  tempDiskBytes: number;
  diskWriteBytes: number | null;
  azurite: 'memory';
  parallelism: number;
  /** Interleaved rounds of D, U and the mirror; the fields above are their medians. */
  rounds: number;
  samples: {
    seconds: number[];
    decompressOnlySeconds: number[];
    uploadOnlySeconds: number[];
    /** Each round's own ratio, for the spread. */
    ratioToFloor: number[];
  };
  /** Under production's caps: (wall − start-up) / max(non-zero / 60 MiB/s, archive / 100 MB/s). */
  ratioToSinkLimit: number | null;
  /** The earlier Python mirror's approach under the same caps, wall time. */
  seedApproachSeconds: number | null;
  capped: CappedResult | null;
  met: {
    ratioToFloor: boolean;
    sentBytes: boolean;
    peakRssMiB: boolean;
    tempDiskBytes: boolean;
    ratioToSinkLimit: boolean | null;
  };
  resume?: ResumeResult | { error: string };
}

const say = (s: string): void => void process.stderr.write(`[bench] ${s}\n`);

function findRepoRoot(from: string): string {
  for (let d = from; ; d = dirname(d)) {
    if (existsSync(join(d, 'package.json')) && existsSync(join(d, 'bench'))) return d;
    if (dirname(d) === d) throw new Error('cannot find the repository root');
  }
}

export function parseOptions(argv: string[]): BenchOptions {
  const { values } = parseArgs({
    args: argv,
    options: {
      sizes: { type: 'string', default: '1024,4096' },
      generator: { type: 'string', default: 'auto' },
      'no-install': { type: 'boolean', default: false },
      keep: { type: 'boolean', default: false },
      resume: { type: 'string', default: 'auto' },
      scratch: { type: 'string' },
      profile: { type: 'boolean', default: false },
      rounds: { type: 'string', default: '3' },
      'no-caps': { type: 'boolean', default: false },
      'capped-rounds': { type: 'string', default: '1' },
      'no-soak': { type: 'boolean', default: false },
      'soak-only': { type: 'boolean', default: false },
      'soak-size': { type: 'string', default: '128' },
      'soak-mirrors': { type: 'string', default: '20' },
      'soak-requests': { type: 'string', default: '50' },
      'soak-series': { type: 'string', default: '10' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    strict: true,
  });
  if (values.help) {
    process.stderr.write(
      `Usage: npm run bench -- [--sizes 1024,4096] [--generator auto|make-stemcell.sh|js] [--no-install]
       [--keep] [--resume auto|off|SIZE] [--scratch DIR] [--profile]
       [--rounds N]   (default 3: D, U and the mirror N times, interleaved; medians reported)
       [--no-caps] [--capped-rounds N]   (default 1: the run under production's caps per size)
       [--no-soak | --soak-only] [--soak-size MIB] [--soak-mirrors N] [--soak-requests N] [--soak-series N]
                      (defaults 128, 20, 50, 10)\n`,
    );
    process.exit(0);
  }
  const sizes = values.sizes.split(',').map((s) => Number(s.trim()));
  if (sizes.length === 0 || sizes.some((s) => !Number.isInteger(s) || s < 8))
    throw new Error(`--sizes takes whole MiB of at least 8, got ${values.sizes}`);
  if (!['auto', 'make-stemcell.sh', 'js'].includes(values.generator))
    throw new Error(`--generator is auto, make-stemcell.sh or js, got ${values.generator}`);
  const whole = (name: string, v: string, min: number): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name} takes a whole number ≥ ${min}, got ${v}`);
    return n;
  };
  const rounds = whole('rounds', values.rounds, 1);
  const cappedRounds = whole('capped-rounds', values['capped-rounds'], 1);
  if (values['no-soak'] && values['soak-only']) throw new Error('--no-soak and --soak-only contradict');
  const soak: SoakOptionsIn | undefined = values['no-soak']
    ? undefined
    : {
        sizeMiB: whole('soak-size', values['soak-size'], 8),
        mirrors: whole('soak-mirrors', values['soak-mirrors'], 2),
        requests: whole('soak-requests', values['soak-requests'], 1),
        series: whole('soak-series', values['soak-series'], 1),
      };
  const resumeOpt =
    values.resume === 'auto' || values.resume === 'off' ? values.resume : Number(values.resume);
  if (typeof resumeOpt === 'number' && !sizes.includes(resumeOpt))
    throw new Error(`--resume names a size not in --sizes: ${values.resume}`);
  const repoRoot = findRepoRoot(__dirname);
  return {
    sizes,
    generator: values.generator as BenchOptions['generator'],
    install: !values['no-install'],
    keep: values.keep,
    resume: resumeOpt,
    scratch: resolve(values.scratch ?? join(repoRoot, '.bench')),
    profile: values.profile,
    rounds,
    caps: !values['no-caps'],
    cappedRounds,
    soak,
    soakOnly: values['soak-only'],
    repoRoot,
  };
}

function chooseGenerator(o: BenchOptions, script: string): Generator {
  if (o.generator === 'js') return 'js';
  const scriptThere = existsSync(script);
  if (!scriptThere) say(`no fixture script at ${script}`);
  const usable = scriptThere && ensureTools({ install: o.install, say });
  if (usable) return 'make-stemcell.sh';
  if (o.generator === 'make-stemcell.sh') throw new Error('make-stemcell.sh cannot run here (see above)');
  say(`FALLBACK: in-memory stemcells (mostly zeros, far from realistic), at most ${JS_MAX_MIB} MiB`);
  return 'js';
}

/** The size the kill-and-resume test runs at: one long enough to hold two checkpoint windows. */
function resumeSize(o: BenchOptions): number | undefined {
  if (o.resume === 'off') return undefined;
  if (typeof o.resume === 'number') return o.resume;
  return o.sizes.find((s) => s * MIB > 2 * 256 * MIB);
}

function settingsFor(azurite: Azurite, boshio: FakeBoshIo, series: string): Record<string, string> {
  return {
    AzureWebJobsStorage: azurite.connectionString,
    BASM_BOSH_IO_URL: boshio.url,
    BASM_STEMCELL_SERIES: series,
  };
}

function jobStore(azurite: Azurite): JobStore {
  return new JobStore(
    TableClient.fromConnectionString(azurite.connectionString, JOBS_TABLE, { allowInsecureConnection: true }),
  );
}

function containerOf(azurite: Azurite, name: string): ContainerClient {
  return BlobServiceClient.fromConnectionString(azurite.connectionString).getContainerClient(name);
}

function failed(run: MirrorRun, what: string): Error {
  return new Error(`${what}: exit ${run.exitCode ?? run.signal}\n${run.stderrTail}`);
}

/** The middle sample (the mean of the two middle ones for an even count). */
function median(xs: readonly number[]): number {
  if (xs.length === 0) throw new Error('no samples');
  const sorted = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** U on a fresh Azurite: the floor's blob checked to hold exactly the non-zero runs. */
async function measureUpload(scan: VhdScan): Promise<number> {
  const azurite = await startAzurite();
  try {
    const floorContainer = containerOf(azurite, 'floor');
    await floorContainer.createIfNotExists();
    const cpu0 = processCpuSeconds(azurite.pid);
    const u = await uploadOnly({
      container: floorContainer,
      credential: sharedKey(azurite.connectionString),
      blobName: 'floor.vhd',
      vhdBytes: scan.vhdBytes,
      ops: scan.ops,
    });
    const azuriteCpu = processCpuSeconds(azurite.pid) - cpu0;
    const floorRanges = await listPageRanges(floorContainer.getPageBlobClient('floor.vhd'));
    if (rangeBytes(floorRanges) !== scan.nonZeroBytes64k)
      throw new Error(`U left ${rangeBytes(floorRanges)} B of pages, expected ${scan.nonZeroBytes64k}`);
    say(
      `  U = ${u.seconds.toFixed(2)} s (${u.puts} puts, ${(u.sentBytes / MIB / u.seconds).toFixed(0)} MiB/s, ` +
        `Azurite CPU ${azuriteCpu.toFixed(2)} s)`,
    );
    return u.seconds;
  } finally {
    await azurite.stop();
  }
}

interface MirrorSample {
  run: MirrorRun;
  sentBytes: number;
  blobRangeBytes: number;
}

/** The mirror on a fresh Azurite, its blob checked against the VHD's non-zero runs. */
async function measureMirror(
  o: BenchOptions,
  s: BenchStemcell,
  boshio: FakeBoshIo,
  scan: VhdScan,
  roundNo: number,
): Promise<MirrorSample> {
  const azurite = await startAzurite();
  try {
    const cpu0 = processCpuSeconds(azurite.pid);
    const own0 = process.cpuUsage();
    const run = await runMirror({
      childScript: join(__dirname, 'mirror-child.js'),
      series: s.series,
      version: s.version,
      settings: settingsFor(azurite, boshio, s.series),
      workDir: join(o.scratch, 'run', `mirror-${s.sizeMiB}-${roundNo}`),
      nodeArgs: o.profile
        ? ['--cpu-prof', '--cpu-prof-dir', join(o.scratch, 'prof', `${s.sizeMiB}-${roundNo}`)]
        : [],
    });
    const azuriteCpu = processCpuSeconds(azurite.pid) - cpu0;
    const own = process.cpuUsage(own0);
    if (run.exitCode !== 0) throw failed(run, 'the mirror failed');
    const job = await jobStore(azurite).get(s.series, s.version);
    if (job?.status !== 'staged') throw new Error(`the job ended ${job?.status ?? 'missing'}, not staged`);
    const blob = containerOf(azurite, 'stemcell').getPageBlobClient(job.blobName ?? '');
    const blobRanges = await listPageRanges(blob);
    const props = await blob.getProperties();
    if (props.contentLength !== scan.vhdBytes)
      throw new Error(`the blob is ${props.contentLength} B, the VHD ${scan.vhdBytes}`);
    const covered = overlapBytes(blobRanges, scan.nonZeroRanges);
    if (covered !== scan.nonZeroBytes64k)
      throw new Error(`the blob's pages cover ${covered} of ${scan.nonZeroBytes64k} non-zero bytes`);
    say(
      `  mirror = ${run.seconds.toFixed(2)} s (transfer ${run.transferSeconds?.toFixed(2) ?? '?'} s), ` +
        `peak RSS ${run.peakRssMiB.toFixed(0)} MiB, sent ${job.sentBytes} B; CPU s: mirror ` +
        `${run.report?.cpuSeconds.toFixed(2) ?? '?'}, Azurite ${azuriteCpu.toFixed(2)}, ` +
        `bosh.io + harness ${((own.user + own.system) / 1e6).toFixed(2)}`,
    );
    return { run, sentBytes: job.sentBytes, blobRangeBytes: rangeBytes(blobRanges) };
  } finally {
    await azurite.stop();
  }
}

async function measureSize(
  o: BenchOptions,
  s: BenchStemcell,
  boshio: FakeBoshIo,
  withResume: boolean,
): Promise<SizeResult> {
  say(`— ${s.sizeMiB} MiB: reading the VHD for its non-zero runs`);
  const scan: VhdScan = await scanVhd(s.vhdPath, { keepData: true });
  say(
    `  vhd ${scan.vhdBytes} B, non-zero in 64 KiB runs ${scan.nonZeroBytes64k} B, ${scan.ops.length} Put Pages`,
  );
  const entry = await boshio.addRelease({ series: s.series, version: s.version, body: { path: s.tgzPath } });

  // Rounds interleave D, U and the mirror, each on a fresh Azurite, so a slow spell of this shared
  // machine lands on all three alike; the medians are compared.
  const d: number[] = [];
  const u: number[] = [];
  const mirrors: MirrorSample[] = [];
  for (let r = 1; r <= o.rounds; r++) {
    say(`  round ${r}/${o.rounds}`);
    const dr = await decompressOnly(s.tgzPath);
    if (dr.vhdBytes !== scan.vhdBytes)
      throw new Error(`D saw ${dr.vhdBytes} VHD bytes, the file has ${scan.vhdBytes}`);
    say(`  D = ${dr.seconds.toFixed(2)} s`);
    d.push(dr.seconds);
    u.push(await measureUpload(scan));
    mirrors.push(await measureMirror(o, s, boshio, scan, r));
  }
  const capped = o.caps
    ? await measureCapped({
        stemcell: s,
        scan,
        boshio,
        entry,
        childScript: join(__dirname, 'mirror-child.js'),
        seedScript: join(__dirname, 'seed-child.js'),
        scratch: o.scratch,
        rounds: o.cappedRounds,
        say,
      })
    : null;
  // The floor's buffers go before the resume run.
  for (const op of scan.ops) delete op.data;

  const runs = mirrors.map((m) => m.run);
  const seconds = median(runs.map((m) => m.seconds));
  const transfers = runs.flatMap((m) => (m.transferSeconds === undefined ? [] : [m.transferSeconds]));
  const floor = Math.max(median(d), median(u));
  // Worst case over the rounds for what must hold every time.
  const peakRssMiB = Math.max(...runs.map((m) => m.peakRssMiB));
  const tempDiskBytes = Math.max(...runs.map((m) => m.folderBytes));
  const sentBytes = Math.max(...mirrors.map((m) => m.sentBytes));
  const writes = runs.map((m) => m.diskWriteBytes);
  const result: SizeResult = {
    sizeMiB: s.sizeMiB,
    generator: s.generator,
    archiveBytes: s.archiveBytes,
    vhdBytes: scan.vhdBytes,
    seconds: round(seconds),
    transferSeconds: transfers.length === 0 ? null : round(median(transfers)),
    decompressOnlySeconds: round(median(d)),
    uploadOnlySeconds: round(median(u)),
    ratioToFloor: round(seconds / floor),
    nonZeroBytes64k: scan.nonZeroBytes64k,
    sentBytes,
    blobRangeBytes: Math.max(...mirrors.map((m) => m.blobRangeBytes)),
    peakRssMiB: round(peakRssMiB, 1),
    tempDiskBytes,
    diskWriteBytes: writes.every((w) => w !== undefined) ? Math.max(...writes) : null,
    azurite: 'memory',
    parallelism: PARALLELISM,
    rounds: o.rounds,
    samples: {
      seconds: runs.map((m) => round(m.seconds)),
      decompressOnlySeconds: d.map((x) => round(x)),
      uploadOnlySeconds: u.map((x) => round(x)),
      ratioToFloor: runs.map((m, i) => round(m.seconds / Math.max(d[i]!, u[i]!))),
    },
    ratioToSinkLimit: capped?.ratioToSinkLimit ?? null,
    seedApproachSeconds: capped?.seedApproachSeconds ?? null,
    capped,
    met: {
      ratioToFloor: seconds / floor <= TARGETS.ratioToFloor,
      sentBytes: sentBytes <= scan.nonZeroBytes64k,
      peakRssMiB: peakRssMiB <= TARGETS.peakRssMiB,
      tempDiskBytes: tempDiskBytes === TARGETS.tempDiskBytes,
      ratioToSinkLimit: capped ? capped.met.ratioToSinkLimit : null,
    },
  };
  if (withResume) {
    // A failed resume is a finding to report, not a reason to lose the other numbers.
    result.resume = await resumeAfterKill({
      stemcell: s,
      scan,
      childScript: join(__dirname, 'mirror-child.js'),
      scratch: o.scratch,
      boshio,
      say,
    }).catch((e: unknown) => {
      const error = e instanceof Error ? e.message : String(e);
      say(`  resume FAILED: ${error.slice(-1500)}`);
      return { error: error.slice(-1500) };
    });
  }
  return result;
}

function round(n: number, digits = 3): number {
  const f = 10 ** digits;
  return Math.round(n * f) / f;
}

export interface BenchOutput {
  results: SizeResult[];
  /** Soak and load (DESIGN §7) on the local host; null with --no-soak. */
  soak: SoakResult | null;
  summary: {
    rssGrowth: number | null;
    met: {
      ratioToFloor: boolean;
      sentBytes: boolean;
      peakRssMiB: boolean;
      rssFlat: boolean | null;
      tempDiskBytes: boolean;
      /** null when nothing ran under the caps. */
      ratioToSinkLimit: boolean | null;
      /** null when the soak did not run. */
      soak: {
        rssFlat: boolean;
        handlesFlat: boolean;
        oneJob: boolean;
        oneTransfer: boolean;
        allStaged: boolean;
        byteIdentical: boolean;
      } | null;
    };
    resume:
      | { reuploadedBytes: number; withinOneWindow: boolean; byteIdentical: boolean }
      | { error: string }
      | null;
    generator: Generator;
    machine: { cpus: number; node: string };
    notes: string[];
  };
}

export async function runBench(o: BenchOptions): Promise<BenchOutput> {
  const script = join(o.repoRoot, 'bench', 'make-stemcell.sh');
  const generator = chooseGenerator(o, script);
  const notes: string[] = [];
  if (generator === 'js')
    notes.push('in-memory fallback stemcells: mostly zeros, so the numbers are not realistic');
  const stemcells: BenchStemcell[] = [];
  const boshio = await startFakeBoshIo();
  try {
    // All builds first, so no build competes with a measurement for the two cores.
    const sizes = o.soakOnly ? [] : o.sizes;
    const wanted = o.soak && !sizes.includes(o.soak.sizeMiB) ? [...sizes, o.soak.sizeMiB] : sizes;
    for (const sizeMiB of wanted) {
      stemcells.push(
        await buildStemcell({ scratch: o.scratch, sizeMiB, generator, script, incompressiblePct: 38, say }),
      );
    }
    const resumeAt = o.soakOnly ? undefined : resumeSize(o);
    const results: SizeResult[] = [];
    for (const s of stemcells.filter((x) => sizes.includes(x.sizeMiB)))
      results.push(await measureSize(o, s, boshio, s.sizeMiB === resumeAt));
    if (resumeAt === undefined && !o.soakOnly)
      notes.push('resume after SIGKILL not measured: no size holds two checkpoint windows');
    let soak: SoakResult | null = null;
    const soakStemcell = o.soak && stemcells.find((x) => x.sizeMiB === o.soak?.sizeMiB);
    if (o.soak && soakStemcell) {
      soak = await runSoak({
        stemcell: soakStemcell,
        scan: await scanVhd(soakStemcell.vhdPath, { keepData: false }),
        boshio,
        scratch: o.scratch,
        mirrors: o.soak.mirrors,
        requests: o.soak.requests,
        series: o.soak.series,
        say,
      });
    }

    const rss = results.map((r) => r.peakRssMiB);
    const growth = rss.length > 1 ? Math.max(...rss) / Math.min(...rss) - 1 : null;
    const resumed = results.find((r) => r.resume)?.resume;
    const capped = results.filter((r) => r.capped);
    return {
      results,
      soak,
      summary: {
        rssGrowth: growth === null ? null : round(growth),
        met: {
          ratioToFloor: results.every((r) => r.met.ratioToFloor),
          sentBytes: results.every((r) => r.met.sentBytes),
          peakRssMiB: results.every((r) => r.met.peakRssMiB),
          rssFlat: growth === null ? null : growth < TARGETS.rssGrowth,
          tempDiskBytes: results.every((r) => r.met.tempDiskBytes),
          ratioToSinkLimit: capped.length === 0 ? null : capped.every((r) => r.met.ratioToSinkLimit === true),
          soak: !soak
            ? null
            : {
                rssFlat: soak.sequential.met.rssFlat,
                handlesFlat: soak.sequential.met.handlesFlat,
                oneJob: soak.concurrentRequests.met.oneJob,
                oneTransfer: soak.concurrentRequests.met.oneTransfer,
                allStaged: soak.sequential.met.allStaged && soak.concurrentSeries.met.allStaged,
                byteIdentical:
                  soak.concurrentRequests.met.byteIdentical && soak.concurrentSeries.met.byteIdentical,
              },
        },
        resume: !resumed
          ? null
          : 'error' in resumed
            ? { error: resumed.error }
            : {
                reuploadedBytes: resumed.reuploadedBytes,
                withinOneWindow: resumed.withinOneWindow,
                byteIdentical: resumed.byteIdentical,
              },
        generator,
        machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
        notes,
      },
    };
  } finally {
    await boshio.close();
    if (!o.keep) for (const s of stemcells) await removeStemcell(s);
  }
}

function table(out: BenchOutput): string {
  const rows = out.results.map(
    (r) =>
      `${String(r.sizeMiB).padStart(6)} MiB  mirror ${r.seconds.toFixed(1).padStart(6)} s  D ${r.decompressOnlySeconds
        .toFixed(1)
        .padStart(
          5,
        )} s  U ${r.uploadOnlySeconds.toFixed(1).padStart(5)} s  ratio ${r.ratioToFloor.toFixed(2)}` +
      `  sent/nonzero ${(r.sentBytes / r.nonZeroBytes64k).toFixed(3)}  RSS ${r.peakRssMiB.toFixed(0)} MiB  temp ${r.tempDiskBytes} B` +
      `\n${' '.repeat(10)}rounds ${r.rounds}: ratios ${r.samples.ratioToFloor.map((x) => x.toFixed(2)).join(' ')}` +
      (r.capped
        ? `\n${' '.repeat(10)}capped: mirror ${r.capped.seconds.toFixed(1)} s (start-up ${r.capped.startUpSeconds.toFixed(1)} s), ` +
          `limit ${r.capped.sinkLimitSeconds.toFixed(1)} s, ratioToSinkLimit ${r.capped.ratioToSinkLimit.toFixed(2)}, ` +
          `U capped ${r.capped.uploadOnlySeconds.toFixed(1)} s, earlier approach ${r.capped.seedApproachSeconds.toFixed(1)} s ` +
          `(temp disk ${r.capped.seedApproach.tempDiskBytes} B)`
        : ''),
  );
  if (out.soak) {
    const { sequential: q, concurrentRequests: c, concurrentSeries: m } = out.soak;
    rows.push(
      `soak: ${q.mirrors} mirrors, RSS ${q.rssMiB[0]} → ${q.rssMiB[q.rssMiB.length - 1]} MiB, resources ` +
        `${q.activeResources[0]} → ${q.activeResources[q.activeResources.length - 1]}, fds ${q.fds[0]} → ${q.fds[q.fds.length - 1]}`,
      `load: ${c.requests} forced requests → ${c.jobs} job, ${c.passes} pass, ${c.downloads} download, ` +
        `${c.putPageBytes} B put of ${c.nonZeroBytes64k} non-zero; ${m.series} series at once: ` +
        `${JSON.stringify(m.statuses)} in ${m.seconds} s, peak RSS ${m.peakRssMiB} MiB`,
    );
  }
  return rows.join('\n');
}

async function cli(): Promise<void> {
  // Interrupted: exit through process.exit, whose 'exit' handlers stop the Azurites it started.
  for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => process.exit(130));
  const o = parseOptions(process.argv.slice(2));
  say(`sizes ${o.sizes.join(', ')} MiB; scratch ${o.scratch}`);
  const out = await runBench(o);
  say(`results:\n${table(out)}`);
  say(`targets met: ${JSON.stringify(out.summary.met)}; resume: ${JSON.stringify(out.summary.resume)}`);
  process.stdout.write(JSON.stringify(out) + '\n');
}

if (require.main === module) {
  cli().catch((e: unknown) => {
    process.stderr.write(`[bench] failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exitCode = 1;
  });
}
