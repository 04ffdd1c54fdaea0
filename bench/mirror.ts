/**
 * Runs one mirror in a child process (the CLI through mirror-child) and watches it from outside:
 * wall time, peak RSS (the child's own report, and /proc/<pid>/status while it runs, which also
 * covers a killed child), and every byte that appears in its otherwise empty TMPDIR and working
 * folder. The child may be killed from a stderr line, to test a resume.
 */
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { lstat, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { TRANSFER_NODE_ARGS } from '../src/lib/core/v8-options';
import type { ChildReport } from './mirror-child';
import { spawnTied } from '../src/local/tied-spawn';

export interface MirrorRunOptions {
  /** The compiled mirror-child.js. */
  childScript: string;
  series: string;
  version: string;
  /** App settings for the child; the harness's own storage and Azure settings never leak in. */
  settings: Record<string, string>;
  /** Holds the child's empty `tmp/` and `cwd/`; emptied first. */
  workDir: string;
  nodeArgs?: string[];
  /** Sees each stderr line (JSON log events and progress lines); may kill the child. */
  onStderrLine?: (line: string, kill: () => void) => void;
}

export interface MirrorRun {
  seconds: number;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  peakRssMiB: number;
  /** Most bytes seen at once in the child's TMPDIR and working folder, or left there at the end. */
  folderBytes: number;
  /** write_bytes of the child's /proc/self/io (storage writes of any file); undefined if killed. */
  diskWriteBytes: number | undefined;
  /** From the transfer.start and transfer.done log events. */
  transferSeconds: number | undefined;
  /** From the spawn to the transfer.start event: process start, settings, resolve, job record. */
  startUpSeconds: number | undefined;
  /** Put Page bytes of this pass, from the transfer.done event. */
  passSentBytes: number | undefined;
  report: ChildReport | undefined;
  stdout: string;
  stderrTail: string;
}

const INHERITED_PREFIXES = ['BASM_', 'AZURE_', 'AzureWebJobs', 'IDENTITY_', 'MSI_', 'FUNCTIONS_'];

export function childEnv(settings: Record<string, string>, tmp: string): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!INHERITED_PREFIXES.some((p) => k.startsWith(p))) env[k] = v;
  }
  return { ...env, ...settings, TMPDIR: tmp, TMP: tmp, TEMP: tmp };
}

async function folderBytes(dir: string): Promise<number> {
  let total = 0;
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = join(dir, e.name);
    if (e.isDirectory()) total += await folderBytes(p);
    else
      total += await lstat(p).then(
        (s) => s.size,
        () => 0,
      );
  }
  return total;
}

export function hwmKiB(pid: number): number {
  try {
    const m = /^VmHWM:\s*(\d+)\s*kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m?.[1] === undefined ? 0 : Number(m[1]);
  } catch {
    return 0;
  }
}

/** CPU seconds (user + system, all threads) a live process has used; 0 when it cannot be read. */
export function processCpuSeconds(pid: number): number {
  try {
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th of them.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}
// USER_HZ: 100 on every Linux this runs on.
const CLOCK_TICKS = 100;

function lines(stream: Readable, each: (line: string) => void): void {
  let rest = '';
  stream.setEncoding('utf8');
  stream.on('data', (d: string) => {
    const parts = (rest + d).split('\n');
    rest = parts.pop() ?? '';
    for (const l of parts) each(l);
  });
  stream.on('end', () => {
    if (rest) each(rest);
  });
}

interface LogEvent {
  event?: string;
  time?: string;
  sentBytes?: number;
}

function parseEvent(line: string): LogEvent | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    return JSON.parse(line) as LogEvent;
  } catch {
    return undefined;
  }
}

export async function runMirror(o: MirrorRunOptions): Promise<MirrorRun> {
  const tmp = join(o.workDir, 'tmp');
  const cwd = join(o.workDir, 'cwd');
  await rm(o.workDir, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  await mkdir(cwd, { recursive: true });

  const t0 = performance.now();
  const child: ChildProcess = spawnTied(
    process.execPath,
    // Started as bin/stemcell-mirror.js starts the CLI: with the transfer's V8 options.
    [...TRANSFER_NODE_ARGS, ...(o.nodeArgs ?? []), o.childScript, 'mirror', o.series, o.version, '--verbose'],
    { cwd, env: childEnv(o.settings, tmp), stdio: ['ignore', 'pipe', 'pipe', 'pipe'] },
  );
  const pid = child.pid ?? 0;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; at: number }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal, at: performance.now() })),
  );
  // Every pipe closed (after the exit): the report and the last lines have arrived.
  const closed = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const kill = (): void => void child.kill('SIGKILL');

  let stdout = '';
  let stderrTail = '';
  let reportText = '';
  let start: number | undefined;
  let startSeenAt: number | undefined;
  let done: LogEvent | undefined;
  child.stdout?.setEncoding('utf8');
  child.stdout?.on('data', (d: string) => (stdout += d));
  (child.stdio[3] as Readable | null)?.on('data', (d: Buffer) => (reportText += d.toString()));
  // The whole log beside (not inside) the watched folders, for reading after the run.
  const log = createWriteStream(join(o.workDir, 'stderr.log'));
  lines(child.stderr!, (line) => {
    log.write(`${((performance.now() - t0) / 1000).toFixed(3)} ${line}\n`);
    stderrTail = (stderrTail + line + '\n').slice(-4000);
    const ev = parseEvent(line);
    if (ev?.event === 'transfer.start' && ev.time) {
      start = Date.parse(ev.time);
      startSeenAt ??= performance.now();
    }
    if (ev?.event === 'transfer.done') done = ev;
    o.onStderrLine?.(line, kill);
  });

  let peakKiB = 0;
  let peakFolder = 0;
  let polling = true;
  const poll = (async () => {
    while (polling) {
      peakKiB = Math.max(peakKiB, hwmKiB(pid));
      peakFolder = Math.max(peakFolder, (await folderBytes(tmp)) + (await folderBytes(cwd)));
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  const exit = await exited;
  polling = false;
  await poll;
  await closed;
  await new Promise<void>((resolve) => log.end(resolve));
  peakFolder = Math.max(peakFolder, (await folderBytes(tmp)) + (await folderBytes(cwd)));

  let report: ChildReport | undefined;
  try {
    report = reportText.trim() ? (JSON.parse(reportText.trim()) as ChildReport) : undefined;
  } catch {
    report = undefined;
  }
  const doneAt = done?.time ? Date.parse(done.time) : undefined;
  return {
    seconds: (exit.at - t0) / 1000,
    exitCode: exit.code,
    signal: exit.signal,
    peakRssMiB: Math.max(peakKiB, report?.maxRssKiB ?? 0) / 1024,
    folderBytes: peakFolder,
    diskWriteBytes: report?.diskWriteBytes,
    transferSeconds: start !== undefined && doneAt !== undefined ? (doneAt - start) / 1000 : undefined,
    startUpSeconds: startSeenAt === undefined ? undefined : (startSeenAt - t0) / 1000,
    passSentBytes: done?.sentBytes,
    report,
    stdout,
    stderrTail,
  };
}
