/**
 * Starts Azurite (blob, queue, table) from node_modules as a child process on free loopback ports.
 * Used by the local host and by the test suite. Always with --disableTelemetry: without it Azurite
 * reports to the internet.
 */
import type { ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { dirname, join } from 'node:path';
import { devStorageConnectionString } from '../lib/config/dev-storage';
import { spawnTied } from './tied-spawn';

export interface AzuriteOptions {
  /** A folder for disk persistence (survives a restart); in memory when absent. */
  location?: string;
  /** Reuse these ports (a restart); free ports are picked otherwise. */
  ports?: { blob: number; queue: number; table: number };
  /** Node options for Azurite's process, before its script (the benchmark preloads a module). */
  nodeArgs?: string[];
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

function azuriteMain(): string {
  return join(dirname(require.resolve('azurite/package.json')), 'dist', 'src', 'azurite.js');
}

function waitForExit(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Resolves once Azurite says all three services listen; rejects if it exits or takes 30 s. */
function listeningPorts(child: ChildProcess, stderr: () => string): Promise<Azurite['ports']> {
  return new Promise((resolve, reject) => {
    const found: Partial<Record<Service, number>> = {};
    let out = '';
    const done = (error?: Error): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      // Keep draining stdout so Azurite never blocks on a full pipe.
      child.stdout?.resume();
      if (error) reject(error);
      else resolve({ blob: found.blob!, queue: found.queue!, table: found.table! });
    };
    const onData = (d: Buffer): void => {
      out = (out + d.toString()).slice(-4000);
      for (const m of out.matchAll(LISTENING)) found[m[1]!.toLowerCase() as Service] = Number(m[2]);
      if (found.blob && found.queue && found.table) done();
    };
    const onExit = (code: number | null): void =>
      done(new Error(`Azurite exited with ${code}: ${stderr() || out}`));
    const timer = setTimeout(
      () => done(new Error(`Azurite did not start within 30 s: ${stderr() || out}`)),
      30_000,
    );
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
  });
}

type Service = 'blob' | 'queue' | 'table';
/** Azurite's own start-up line for each service, with the port it really bound. */
const LISTENING =
  /Azurite (Blob|Queue|Table) service is successfully listening at http:\/\/127\.0\.0\.1:(\d+)/g;

export async function startAzurite(options: AzuriteOptions = {}): Promise<Azurite> {
  // Port 0 lets the kernel pick: a port found free beforehand can be taken by another process
  // before Azurite binds it (parallel test files did).
  const wanted = options.ports ?? { blob: 0, queue: 0, table: 0 };
  const args = [
    ...(options.nodeArgs ?? []),
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
    String(wanted.blob),
    '--queuePort',
    String(wanted.queue),
    '--tablePort',
    String(wanted.table),
    ...(options.location ? ['--location', options.location] : ['--inMemoryPersistence']),
  ];
  // Never outlive the process that started it, however that one ends (SIGKILL, a crash, a test
  // runner tearing its worker down): spawnTied hands Azurite a pipe whose end-of-file ends it.
  const child = spawnTied(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  // On a normal end, process.exit or an uncaught error, the 'exit' handler ends it at once.
  const orphanGuard = (): void => void child.kill('SIGKILL');
  process.once('exit', orphanGuard);
  child.once('exit', () => process.off('exit', orphanGuard));
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
  let ports: Azurite['ports'];
  try {
    ports = await listeningPorts(child, () => stderr);
  } catch (e) {
    child.kill('SIGKILL');
    await waitForExit(child);
    throw e;
  }
  const end = async (signal: NodeJS.Signals) => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill(signal);
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
    await waitForExit(child);
    clearTimeout(timer);
  };
  return {
    connectionString: devStorageConnectionString(ports),
    ports,
    pid: child.pid ?? 0,
    stop: () => end('SIGTERM'),
    kill: () => end('SIGKILL'),
  };
}
