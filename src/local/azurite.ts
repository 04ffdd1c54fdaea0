/**
 * Starts Azurite (blob, queue, table) from node_modules as a child process on free loopback ports.
 * Used by the local host and by the test suite. Always with --disableTelemetry: without it Azurite
 * reports to the internet.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, connect } from 'node:net';
import { dirname, join } from 'node:path';

export interface AzuriteOptions {
  /** A folder for disk persistence (survives a restart); in memory when absent. */
  location?: string;
  /** Reuse these ports (a restart); free ports are picked otherwise. */
  ports?: { blob: number; queue: number; table: number };
}

export interface Azurite {
  readonly connectionString: string;
  readonly ports: { blob: number; queue: number; table: number };
  /** Of the Azurite process, to watch its resource use. */
  readonly pid: number;
  /** Ends the process (SIGTERM, then SIGKILL) and waits for it. */
  stop(): Promise<void>;
  /** Ends the process at once, as a crash would. */
  kill(): Promise<void>;
}

const ACCOUNT = 'devstoreaccount1';
const KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      s.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
  });
}

export function isListening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ port, host: '127.0.0.1' });
    sock.once('connect', () => {
      sock.destroy();
      resolve(true);
    });
    sock.once('error', () => resolve(false));
  });
}

export function azuriteConnectionString(ports: { blob: number; queue: number; table: number }): string {
  const base = 'http://127.0.0.1';
  return (
    `DefaultEndpointsProtocol=http;AccountName=${ACCOUNT};AccountKey=${KEY};` +
    `BlobEndpoint=${base}:${ports.blob}/${ACCOUNT};QueueEndpoint=${base}:${ports.queue}/${ACCOUNT};` +
    `TableEndpoint=${base}:${ports.table}/${ACCOUNT};`
  );
}

function azuriteMain(): string {
  return join(dirname(require.resolve('azurite/package.json')), 'dist', 'src', 'azurite.js');
}

function waitForExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

export async function startAzurite(options: AzuriteOptions = {}): Promise<Azurite> {
  const ports = options.ports ?? { blob: await freePort(), queue: await freePort(), table: await freePort() };
  const args = [
    azuriteMain(),
    '--disableTelemetry',
    '--silent',
    '--blobHost',
    '127.0.0.1',
    '--queueHost',
    '127.0.0.1',
    '--tableHost',
    '127.0.0.1',
    '--blobPort',
    String(ports.blob),
    '--queuePort',
    String(ports.queue),
    '--tablePort',
    String(ports.table),
    ...(options.location ? ['--location', options.location] : ['--inMemoryPersistence']),
  ];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  // Never outlive the process that started it: its 'exit' handlers run on a normal end, on
  // process.exit and on an uncaught error. A signal it has no handler for skips them, so every
  // launcher that embeds Azurite (local host, benchmark) turns SIGINT and SIGTERM into an exit.
  const orphanGuard = (): void => void child.kill('SIGKILL');
  process.once('exit', orphanGuard);
  child.once('exit', () => process.off('exit', orphanGuard));
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`Azurite exited with ${child.exitCode}: ${stderr}`);
    const up = await Promise.all([ports.blob, ports.queue, ports.table].map(isListening));
    if (up.every(Boolean)) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`Azurite did not start within 30 s: ${stderr}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const end = async (signal: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await waitForExit(child);
    clearTimeout(timer);
  };
  return {
    connectionString: azuriteConnectionString(ports),
    ports,
    pid: child.pid ?? 0,
    stop: () => end('SIGTERM'),
    kill: () => end('SIGKILL'),
  };
}
