/**
 * The host side of the worker process. As in Azure, the functions run in a language worker process
 * apart from the host: the host learns the registrations from it, sends it invocation requests and
 * reads their responses. And as in Azure, host.json's `functionTimeout` is enforced by restarting
 * that process (the host's `WebScriptHostExceptionHandler.OnTimeoutExceptionAsync` calls
 * `RestartWorkerWithInvocationIdAsync`): every invocation running on it ends, and each fails, so
 * its queue message is retried or poisoned. A worker that dies on its own is restarted the same way.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { MirrorError, toErrorInfo } from '../lib/core/errors';
import type { Logger } from '../lib/core/log';
import { TRANSFER_NODE_ARGS } from '../lib/core/v8-options';
import type {
  CoreLogLevel,
  CoreLogSink,
  RpcInvocationRequest,
  RpcInvocationResponse,
} from './functions-core';
import type { InvocationBackend } from './invoke';
import type { FunctionRegistration } from './registry';

export type ToWorker = { type: 'invoke'; functionName: string; request: RpcInvocationRequest };

export type FromWorker =
  | { type: 'ready'; pid: number; functions: FunctionRegistration[]; unsupported: string[] }
  | {
      type: 'log';
      invocationId: string | undefined;
      level: CoreLogLevel;
      category: 'user' | 'system';
      message: string;
    }
  | { type: 'done'; invocationId: string; response: RpcInvocationResponse }
  | { type: 'failed'; invocationId: string; error: { name: string; message: string; code?: string } }
  | { type: 'start-failed'; error: { name: string; message: string } };

export interface WorkerProcessOptions {
  /** The app settings the worker sees (its whole environment). */
  env: NodeJS.ProcessEnv;
  /** An invocation running longer restarts the worker; none when undefined (host.json `-1`). */
  functionTimeoutMs: number | undefined;
  log: Logger;
  /** The compiled worker entry; worker-main.js beside this file by default. */
  entry?: string;
}

interface Pending {
  functionName: string;
  log: CoreLogSink;
  resolve(r: RpcInvocationResponse): void;
  reject(e: unknown): void;
  timer: NodeJS.Timeout | undefined;
  timedOut: boolean;
}

const START_LIMIT_MS = 60_000;

/** `hh:mm:ss` as host.json and the host's messages write a time span. */
function timeSpan(ms: number): string {
  const s = Math.round(ms / 1000);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${pad(Math.floor(s / 3600))}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`;
}

export class WorkerProcess {
  private child: ChildProcess | undefined;
  private ready: Promise<FunctionRegistration[]>;
  private readonly pending = new Map<string, Pending>();
  private closing = false;
  /** Worker processes started so far (1 after start, +1 per restart). */
  starts = 0;

  private constructor(private readonly o: WorkerProcessOptions) {
    this.ready = this.spawn();
  }

  /** Starts the worker and waits until it has loaded the app. */
  static async start(
    o: WorkerProcessOptions,
  ): Promise<{ worker: WorkerProcess; functions: FunctionRegistration[] }> {
    const worker = new WorkerProcess(o);
    const functions = await worker.ready;
    return { worker, functions };
  }

  private spawn(): Promise<FunctionRegistration[]> {
    this.starts++;
    const child = fork(this.o.entry ?? join(__dirname, 'worker-main.js'), [], {
      env: this.o.env,
      execArgv: [...TRANSFER_NODE_ARGS],
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child = child;
    return new Promise<FunctionRegistration[]>((resolve, reject) => {
      let loaded = false;
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`the worker process did not load the app within ${START_LIMIT_MS / 1000} s`));
      }, START_LIMIT_MS);
      child.on('message', (m: FromWorker) => {
        if (m.type === 'ready') {
          clearTimeout(timer);
          loaded = true;
          this.o.log.info('worker.started', { pid: m.pid, starts: this.starts, unsupported: m.unsupported });
          resolve(m.functions);
        } else if (m.type === 'start-failed') {
          clearTimeout(timer);
          reject(new Error(`the worker process could not load the app: ${m.error.message}`));
        } else this.onMessage(m);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        // A worker that never loaded the app is not restarted: it would fail the same way again.
        if (loaded) this.onExit(child, code, signal);
        else reject(new Error(`the worker process exited before it was ready (${signal ?? code})`));
      });
    });
  }

  private onMessage(m: FromWorker): void {
    if (m.type === 'log') {
      const p = m.invocationId === undefined ? undefined : this.pending.get(m.invocationId);
      if (p) p.log(m.level, m.category, m.message);
      else if (m.level === 'error' || m.level === 'critical' || m.level === 'warning')
        this.o.log.warn('worker.log', { level: m.level, message: m.message });
      return;
    }
    if (m.type !== 'done' && m.type !== 'failed') return;
    const p = this.pending.get(m.invocationId);
    if (!p) return;
    this.pending.delete(m.invocationId);
    clearTimeout(p.timer);
    if (m.type === 'done') p.resolve(m.response);
    else p.reject(Object.assign(new Error(m.error.message), { name: m.error.name, code: m.error.code }));
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (child !== this.child) return;
    this.child = undefined;
    const ended = [...this.pending.entries()];
    this.pending.clear();
    for (const [id, p] of ended) {
      clearTimeout(p.timer);
      p.reject(
        new MirrorError(
          'INTERNAL',
          p.timedOut
            ? `Timeout value of ${timeSpan(this.o.functionTimeoutMs ?? 0)} exceeded by function '${p.functionName}' (Id: '${id}'): the worker process was restarted`
            : `the worker process exited (${signal ?? `code ${code}`}) while '${p.functionName}' ran`,
        ),
      );
    }
    if (this.closing) return;
    this.o.log.warn('worker.exited', { code, signal, endedInvocations: ended.length });
    this.ready = this.spawn();
    this.ready.catch((e: unknown) => this.o.log.error('worker.start-failed', { error: toErrorInfo(e) }));
  }

  /** Ends the worker process (with every invocation on it); a new one is started. */
  private restart(reason: string): void {
    this.o.log.error('worker.restarting', { reason, pid: this.child?.pid });
    this.child?.kill('SIGKILL');
  }

  readonly backend: InvocationBackend = async (functionName, request, log) => {
    await this.ready;
    const child = this.child;
    if (!child?.connected) throw new MirrorError('INTERNAL', 'the worker process is not running');
    return new Promise<RpcInvocationResponse>((resolve, reject) => {
      const p: Pending = { functionName, log, resolve, reject, timer: undefined, timedOut: false };
      const limit = this.o.functionTimeoutMs;
      if (limit !== undefined) {
        p.timer = setTimeout(() => {
          p.timedOut = true;
          this.o.log.error('function.timeout', {
            function: functionName,
            invocationId: request.invocationId,
            functionTimeout: timeSpan(limit),
          });
          this.restart('functionTimeout');
        }, limit);
      }
      this.pending.set(request.invocationId, p);
      child.send({ type: 'invoke', functionName, request } satisfies ToWorker);
    });
  };

  /** Stops the worker: SIGTERM, then SIGKILL after `limitMs`. Running invocations end with it. */
  async close(limitMs = 5000): Promise<void> {
    this.closing = true;
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), limitMs);
    await exited;
    clearTimeout(timer);
  }
}
