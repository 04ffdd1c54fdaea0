/**
 * The worker process of the local host: loads the function files with the `@azure/functions-core`
 * stand-in (as the Node.js language worker does), tells the host what they registered, and runs
 * the invocations the host sends over the IPC channel through the library's invocation path. It
 * ends when the host goes away, so a host killed mid-run leaves no worker behind.
 */
import { loadApp } from './registry';
import type { FromWorker, ToWorker } from './worker-process';

function send(message: FromWorker): void {
  process.send?.(message);
}

function errorOf(e: unknown): { name: string; message: string; code?: string } {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return { name: e.name, message: e.message, ...(typeof code === 'string' ? { code } : {}) };
  }
  return { name: 'Error', message: String(e) };
}

async function main(): Promise<void> {
  if (!process.send) throw new Error('the worker runs only as a child of the local host');
  process.on('disconnect', () => process.exit(0));
  // The host decides when its worker ends (Ctrl+C reaches the whole process group): it drains the
  // running invocations first, then stops this process.
  process.on('SIGINT', () => undefined);
  const { core, functions, unsupported } = await loadApp();
  core.systemLog = (level, category, message) =>
    send({ type: 'log', invocationId: undefined, level, category, message });
  process.on('message', (m: ToWorker) => {
    if (m.type !== 'invoke') return;
    const { request } = m;
    core
      .invoke(m.functionName, request, (level, category, message) =>
        send({ type: 'log', invocationId: request.invocationId, level, category, message }),
      )
      .then(
        (response) => send({ type: 'done', invocationId: request.invocationId, response }),
        (e: unknown) => send({ type: 'failed', invocationId: request.invocationId, error: errorOf(e) }),
      );
  });
  send({ type: 'ready', pid: process.pid, functions, unsupported });
}

main().catch((e: unknown) => {
  send({ type: 'start-failed', error: errorOf(e) });
  process.exit(1);
});
