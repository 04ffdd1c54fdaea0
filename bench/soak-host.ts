/**
 * The local host (the app's stand-in for the Functions host) in a process of its own, for the soak:
 * settings from its environment, the queue batch size from argv (how many messages one worker
 * process handles at once). On the IPC channel it tells the harness its URL once it listens, and
 * answers `stats` with its own memory and open handles, measured after full garbage collections.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { startLocalHost } from '../src/local/host';

export interface HostStats {
  /** Resident set after two full collections. */
  rssMiB: number;
  heapUsedMiB: number;
  /** The process's peak resident set so far (VmHWM). */
  peakRssMiB: number;
  /** process.getActiveResourcesInfo(), counted by kind (sockets, timers, file handles, …). */
  resources: Record<string, number>;
  resourceCount: number;
  /** Open file descriptors (/proc/self/fd). */
  fds: number;
}

export type HostMessage = { kind: 'ready'; url: string } | { kind: 'stats'; id: number; stats: HostStats };
export type HarnessMessage = { kind: 'stats'; id: number } | { kind: 'stop' };

const MIB = 1024 * 1024;

function statusKiB(field: string): number {
  try {
    const m = new RegExp(`^${field}:\\s*(\\d+)\\s*kB$`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
    return m?.[1] === undefined ? 0 : Number(m[1]);
  } catch {
    return 0;
  }
}

function stats(): HostStats {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const mem = process.memoryUsage();
  const info = process.getActiveResourcesInfo();
  const resources: Record<string, number> = {};
  for (const r of info) resources[r] = (resources[r] ?? 0) + 1;
  let fds = 0;
  try {
    fds = readdirSync('/proc/self/fd').length;
  } catch {
    fds = 0;
  }
  return {
    rssMiB: mem.rss / MIB,
    heapUsedMiB: mem.heapUsed / MIB,
    peakRssMiB: statusKiB('VmHWM') / 1024,
    resources,
    resourceCount: info.length,
    fds,
  };
}

async function main(): Promise<void> {
  const batchSize = Number(process.argv[2] ?? '1');
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`bad batch size ${process.argv[2]}`);
  const host = await startLocalHost({
    port: 0,
    // Deferred messages (another worker holds the lease) come back within a second of being due.
    queueSettings: { batchSize, maxPollingIntervalMs: 1000 },
    minPollingIntervalMs: 50,
  });
  const send = (m: HostMessage): void => void process.send?.(m);
  process.on('message', (m: HarnessMessage) => {
    if (m.kind === 'stats') send({ kind: 'stats', id: m.id, stats: stats() });
    if (m.kind === 'stop') {
      void host.close().finally(() => {
        process.disconnect?.();
        process.exitCode = 0;
      });
    }
  });
  // The harness going away ends the host too.
  process.on('disconnect', () => void host.close().finally(() => process.exit(0)));
  send({ kind: 'ready', url: host.url });
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
