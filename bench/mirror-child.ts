/**
 * The mirror as the benchmark runs it: the operator CLI in a process of its own, so its memory and
 * disk use are its own and it can be killed. On exit it reports, on file descriptor 3, its peak RSS
 * and the bytes it caused to be written to storage (/proc/self/io), which the harness cannot read
 * once the process is gone.
 */
import { readFileSync, writeSync } from 'node:fs';
import { main } from '../src/cli';

export interface ChildReport {
  maxRssKiB: number;
  /** write_bytes of /proc/self/io; undefined where the kernel does not account it. */
  diskWriteBytes: number | undefined;
  exitCode: number;
  /** User + system CPU of the whole process (every thread, zlib's pool included). */
  cpuSeconds: number;
}

const REPORT_FD = 3;

function diskWriteBytes(): number | undefined {
  try {
    const m = /^write_bytes:\s*(\d+)$/m.exec(readFileSync('/proc/self/io', 'utf8'));
    return m?.[1] === undefined ? undefined : Number(m[1]);
  } catch {
    return undefined;
  }
}

/**
 * This process's own peak RSS. Not resourceUsage().maxRSS: Linux keeps ru_maxrss across exec, so a
 * child forked from a large parent (the harness holds the VHD's runs for the upload floor) would
 * report the parent's size.
 */
function peakRssKiB(): number {
  try {
    const m = /^VmHWM:\s*(\d+)\s*kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m?.[1] === undefined ? 0 : Number(m[1]);
  } catch {
    return 0;
  }
}

process.on('exit', (code) => {
  const cpu = process.cpuUsage();
  const report: ChildReport = {
    maxRssKiB: peakRssKiB(),
    diskWriteBytes: diskWriteBytes(),
    exitCode: code,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
  };
  try {
    writeSync(REPORT_FD, JSON.stringify(report) + '\n');
  } catch {
    // Started without the report pipe: nothing to tell.
  }
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`${String(e)}\n`);
    process.exitCode = 1;
  },
);
