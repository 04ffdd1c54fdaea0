/**
 * The operator CLI: `stemcell-mirror mirror|status|versions`. Runs the same pipeline as the worker,
 * in this process, against the storage and gallery the settings name.
 */
import { parseArgs } from 'node:util';
import { SingleBar } from 'cli-progress';
import { loadConfig, type Config } from './lib/config/config';
import { isMirrorError, toErrorInfo } from './lib/core/errors';
import { TERMINAL, type Job } from './lib/jobs/job';
import { jobView } from './lib/jobs/view';
import type { ScheduleHealth } from './lib/jobs/schedule-health';
import { createLogger, type Logger, type LogLevel } from './lib/core/log';
import { compareVersions, toGalleryVersion } from './lib/core/names';
import { runMirror, type RunOutcome } from './lib/mirror/runner';
import type { RequestSender } from './lib/jobs/request-queue';
import { imageDefinitionCandidates } from './lib/stemcell/cpi-image';
import { parseRequest, type QueueMessage } from './lib/jobs/requests';
import { createServices, type Services } from './lib/mirror/services';
import type { TransferCheckpoint } from './lib/mirror/transfer-pass';

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  isTTY: boolean;
  /** For tests: services built from these settings instead of the environment. */
  env?: Readonly<Record<string, string | undefined>>;
}

const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

const HELP: Record<string, string> = {
  main: `Usage: stemcell-mirror <command> [options]

Commands:
  mirror <series> [version] [--force]   mirror one stemcell now, in this process (version defaults to latest)
  status [series [version]]             show mirror jobs (all, one series, or one job)
  versions <series>                     bosh.io versions beside the gallery's, and which are missing

Options:
  -h, --help      help for a command
  -v, --verbose   log every event (JSON lines on stderr)

Settings come from the environment (see README: Configuration). Exit codes: 0 done, 1 failed, 2 usage.`,
  mirror: `Usage: stemcell-mirror mirror <series> [version] [--force] [--reason TEXT]

Downloads the stemcell from bosh.io, verifies it, uploads the VHD as a page blob and, when a gallery
is configured, publishes the image version and waits for it. Shows a progress bar on a terminal.
  --force        mirror again even if the gallery already has the version, or the job failed
  --reason TEXT  recorded on the job
Exit codes: 0 succeeded, skipped or staged; 1 failed; 2 usage.`,
  status: `Usage: stemcell-mirror status [series [version]] [--json] [--status S]

Lists mirror jobs newest first and the schedule's health (last run, next due, overdue), or shows one
job. --json prints the status JSON of the HTTP API.`,
  versions: `Usage: stemcell-mirror versions <series> [--json]

Lists bosh.io's versions of a series beside the gallery's image versions, marking missing ones.`,
};

class UsageError extends Error {}

export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === '-h' || command === '--help' || command === 'help') {
    io.out(HELP.main!);
    return command === undefined ? EXIT.usage : EXIT.ok;
  }
  const run = COMMANDS[command];
  if (!run) {
    io.err(`unknown command "${command}"\n\n${HELP.main}`);
    return EXIT.usage;
  }
  try {
    return await run(rest, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`${e.message}\n\n${HELP[command]}`);
      return EXIT.usage;
    }
    const info = toErrorInfo(e);
    io.err(`error: ${info.code}: ${info.message}`);
    return isMirrorError(e) && e.code === 'INVALID_REQUEST' ? EXIT.usage : EXIT.failed;
  }
}

type Command = (args: string[], io: Io) => Promise<number>;

const COMMANDS: Record<string, Command> = { mirror, status, versions };

type OptionSpec = Record<string, { type: 'string' | 'boolean'; short?: string }>;
interface Parsed {
  values: Record<string, string | boolean | undefined>;
  positionals: string[];
}

function parse(args: string[], options: OptionSpec, max: number): Parsed {
  let parsed: Parsed;
  try {
    parsed = parseArgs<{ options: OptionSpec; allowPositionals: true; strict: true; args: string[] }>({
      args,
      options: {
        help: { type: 'boolean', short: 'h' },
        verbose: { type: 'boolean', short: 'v' },
        ...options,
      },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (parsed.positionals.length > max)
    throw new UsageError(`too many arguments: ${parsed.positionals.join(' ')}`);
  return parsed;
}

function setup(io: Io, verbose: boolean): { config: Config; services: Services; log: Logger } {
  const log = createLogger((level: LogLevel, line) => {
    if (verbose || level !== 'info') io.err(line);
  });
  const config = loadConfig(io.env ?? process.env);
  return { config, services: createServices(config, log), log };
}

/**
 * Continuations stay in this process: the CLI waits and runs the next step itself. Watchdogs are
 * dropped: this process is the only worker, and if it dies the operator runs the command again.
 */
class LocalSender implements RequestSender {
  private next: { message: QueueMessage; delaySeconds: number } | undefined;
  send(message: QueueMessage, delaySeconds = 0): Promise<void> {
    if (message.watchdog === undefined) this.next = { message, delaySeconds };
    return Promise.resolve();
  }
  /** The continuation the last step asked for, if any. */
  take(): { message: QueueMessage; delaySeconds: number } | undefined {
    const n = this.next;
    this.next = undefined;
    return n;
  }
}

async function mirror(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, { force: { type: 'boolean' }, reason: { type: 'string' } }, 2);
  if (values.help) {
    io.out(HELP.mirror!);
    return EXIT.ok;
  }
  if (positionals.length < 1) throw new UsageError('mirror needs a series');
  const request = parseRequest({
    series: positionals[0],
    version: positionals[1] ?? 'latest',
    force: values.force === true,
    reason: typeof values.reason === 'string' ? values.reason : 'cli',
  });
  const { services, log } = setup(io, values.verbose === true);
  // Resolved first, as POST /api/mirror does: a version bosh.io does not list leaves no job behind.
  const release = await services.boshio.resolve(request.series, request.version);
  const progress = new Progress(io);
  const sender = new LocalSender();
  let message: QueueMessage = { ...request, version: release.version };
  const forever = new AbortController().signal;
  try {
    for (;;) {
      const outcome: RunOutcome = await runMirror(
        message,
        { ...services, queue: sender, log, onProgress: (job, cp) => progress.update(job, cp) },
        { budget: forever },
      );
      if (
        outcome.kind === 'finished' ||
        outcome.kind === 'failed' ||
        (outcome.kind === 'noop' && outcome.job && TERMINAL.has(outcome.job.status))
      ) {
        progress.stop();
        return report(outcome.job!, io);
      }
      const next = sender.take();
      const wait = next?.delaySeconds ?? (outcome.kind === 'deferred' ? outcome.delaySeconds : 1);
      progress.note(
        outcome.kind === 'deferred'
          ? `another worker holds this job; looking again in ${wait}s`
          : `waiting ${wait}s (${outcome.kind === 'continued' ? outcome.job.stage : outcome.kind})`,
      );
      await new Promise((r) => setTimeout(r, wait * 1000));
      message = next?.message ?? {
        series: request.series,
        version: message.version,
        continuation: true,
      };
    }
  } finally {
    progress.stop();
  }
}

function report(job: Job, io: Io): number {
  const v = jobView(job);
  io.out(JSON.stringify(v, null, 2));
  if (job.status === 'failed') {
    io.err(`failed: ${job.errorCode ?? 'INTERNAL'}: ${job.errorMessage ?? ''}`);
    return EXIT.failed;
  }
  io.err(
    `${job.series} ${job.version}: ${job.status}${job.galleryImageVersionId ? ` (${job.galleryImageVersionId})` : ''}`,
  );
  return EXIT.ok;
}

async function status(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' }, status: { type: 'string' } }, 2);
  if (values.help) {
    io.out(HELP.status!);
    return EXIT.ok;
  }
  const { services } = setup(io, values.verbose === true);
  const [series, version] = positionals;
  if (series !== undefined && version !== undefined) {
    const job = await services.jobs.get(series, version);
    if (!job) {
      io.err(`no job for ${series} ${version}`);
      return EXIT.failed;
    }
    io.out(values.json ? JSON.stringify(jobView(job), null, 2) : describeJob(job));
    return job.status === 'failed' ? EXIT.failed : EXIT.ok;
  }
  const page = await services.jobs.list({
    ...(series ? { series } : {}),
    ...(typeof values.status === 'string' ? { status: values.status as Job['status'] } : {}),
    limit: 200,
  });
  const schedule = await services.scheduleWatch.health();
  if (values.json) io.out(JSON.stringify({ jobs: page.jobs.map(jobView), schedule }, null, 2));
  else
    io.out(
      (page.jobs.length === 0
        ? 'no jobs'
        : table(['SERIES', 'VERSION', 'STATUS', 'STAGE', 'PROGRESS', 'UPDATED'], page.jobs.map(row))) +
        `\n\n${describeSchedule(schedule)}`,
    );
  return EXIT.ok;
}

async function versions(args: string[], io: Io): Promise<number> {
  const { values, positionals } = parse(args, { json: { type: 'boolean' } }, 1);
  if (values.help) {
    io.out(HELP.versions!);
    return EXIT.ok;
  }
  if (positionals.length < 1) throw new UsageError('versions needs a series');
  const series = parseRequest({ series: positionals[0] }).series;
  const { services, config } = setup(io, values.verbose === true);
  const releases = await services.boshio.listReleases(series);
  // The definitions this series' stemcells are published into, named as publishing names them.
  const definitions = imageDefinitionCandidates(series, config.gallery?.imageName);
  const found = services.gallery
    ? await Promise.all(
        definitions.map(async (d) => ({ d, versions: await services.gallery!.listVersions(d) })),
      )
    : [];
  const definition = found.find((f) => f.versions.length > 0)?.d ?? definitions[0]!;
  const byName = new Map(found.flatMap((f) => f.versions).map((v) => [v.name, v]));
  const rows = releases.map((r) => {
    const gv = toGalleryVersion(r.version);
    const v = byName.get(gv);
    byName.delete(gv);
    return {
      version: r.version,
      galleryVersion: gv,
      boshIo: true,
      gallery: v?.provisioningState ?? (services.gallery ? 'missing' : 'no gallery'),
    };
  });
  for (const v of byName.values())
    rows.push({ version: v.name, galleryVersion: v.name, boshIo: false, gallery: v.provisioningState });
  rows.sort((a, b) => compareVersions(b.galleryVersion, a.galleryVersion));
  if (values.json) io.out(JSON.stringify({ series, definition, definitions, versions: rows }, null, 2));
  else
    io.out(
      table(
        ['VERSION', 'GALLERY VERSION', 'BOSH.IO', `GALLERY (${definition})`],
        rows.map((r) => [r.version, r.galleryVersion, r.boshIo ? 'yes' : 'no', r.gallery]),
      ),
    );
  return EXIT.ok;
}

function row(job: Job): string[] {
  const v = jobView(job) as { progress: { percent: number } };
  return [job.series, job.version, job.status, job.stage, `${v.progress.percent}%`, job.updatedAt];
}

function describeSchedule(h: ScheduleHealth): string {
  const state = h.overdue ? 'OVERDUE: the timer has not run when it was due' : 'on time';
  return `schedule: last run ${h.lastRunAt ?? 'never'}, next due ${h.nextDueAt ?? 'never'}, ${state}`;
}

function describeJob(job: Job): string {
  const lines = [
    `${job.series} ${job.version} → gallery version ${job.galleryVersion}`,
    `status ${job.status}, stage ${job.stage}, attempts ${job.attempts}`,
    `progress ${mib(job.watermark)} of ${mib(job.vhdBytes ?? 0)} MiB of VHD; ${mib(job.uploadedBytes)} MiB uploaded, ${mib(job.skippedZeroBytes)} MiB zeros skipped`,
  ];
  if (job.galleryImageVersionId) lines.push(`image version ${job.galleryImageVersionId}`);
  if (job.errorCode) lines.push(`error ${job.errorCode}: ${job.errorMessage ?? ''}`);
  lines.push(`notification ${job.notify}${job.notifyError ? `: ${job.notifyError}` : ''}`);
  return lines.join('\n');
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join('  ')
      .trimEnd();
  return [fmt(head), ...rows.map(fmt)].join('\n');
}

function mib(n: number): string {
  return (n / 1024 / 1024).toFixed(0);
}

/** A progress bar on a terminal; a line every 10 % otherwise (logs, CI). */
class Progress {
  private bar: SingleBar | undefined;
  private lastPct = -1;

  constructor(private readonly io: Io) {}

  update(job: Job, cp: TransferCheckpoint): void {
    const total = cp.vhdBytes || job.vhdBytes || 0;
    if (total === 0) return;
    const pct = Math.floor((cp.watermark / total) * 100);
    if (this.io.isTTY) {
      if (!this.bar) {
        this.bar = new SingleBar({
          format:
            ' {stage} |{bar}| {percentage}% | {value}/{total} MiB | {uploaded} MiB sent, {zeros} MiB zeros skipped',
          hideCursor: true,
        });
        this.bar.start(Math.ceil(total / 1048576), 0, { stage: 'transfer', uploaded: '0', zeros: '0' });
      }
      this.bar.update(Math.floor(cp.watermark / 1048576), {
        uploaded: mib(cp.uploadedBytes),
        zeros: mib(cp.skippedZeroBytes),
      });
    } else if (pct >= this.lastPct + 10) {
      this.lastPct = pct - (pct % 10);
      this.io.err(
        `transfer ${pct}%: ${mib(cp.watermark)}/${mib(total)} MiB of VHD, ${mib(cp.uploadedBytes)} MiB uploaded, ${mib(cp.skippedZeroBytes)} MiB zeros skipped`,
      );
    }
  }

  note(text: string): void {
    if (this.bar) this.stop();
    this.io.err(text);
  }

  stop(): void {
    this.bar?.stop();
    this.bar = undefined;
  }
}

function processIo(): Io {
  return {
    out: (t) => process.stdout.write(t + '\n'),
    err: (t) => process.stderr.write(t + '\n'),
    isTTY: process.stderr.isTTY === true,
  };
}
