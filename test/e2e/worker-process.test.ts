/**
 * The host side of the worker process, with a tiny stand-in worker speaking the same IPC protocol:
 * an invocation that outlives functionTimeout restarts the process, and every invocation running
 * on it ends with it, as in the Functions host; a worker that dies on its own is replaced too.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/lib/core/log';
import { WorkerProcess } from '../../src/local/worker-process';

let dir: string;
let entry: string;
const lines: string[] = [];
const log = createLogger((_level, line) => void lines.push(line));

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'worker-process-'));
  entry = join(dir, 'worker.js');
  // "slow" never answers; "fast" answers at once; "crash" ends the process.
  writeFileSync(
    entry,
    `process.on('disconnect', () => process.exit(0));
process.on('message', (m) => {
  const id = m.request.invocationId;
  if (m.functionName === 'fast') process.send({ type: 'done', invocationId: id, response: { invocationId: id } });
  if (m.functionName === 'crash') process.exit(3);
});
process.send({ type: 'ready', pid: process.pid, functions: [], unsupported: [] });
`,
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const request = (id: string) => ({ invocationId: id, inputData: [], triggerMetadata: {} });
const noLog = () => undefined;
const events = (name: string) =>
  lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((e) => e.event === name);

describe('worker process', () => {
  it('restarts on a function timeout, ending every invocation on it; the next one runs on the new process', async () => {
    const { worker } = await WorkerProcess.start({ env: process.env, functionTimeoutMs: 1500, log, entry });
    try {
      const started = Date.now();
      const a = worker.backend('slow', request('a'), noLog);
      await new Promise((r) => setTimeout(r, 500));
      const b = worker.backend('slow', request('b'), noLog);
      await expect(a).rejects.toThrow(/Timeout value of 00:00:02 exceeded by function 'slow' \(Id: 'a'\)/);
      // b had run 1 s of its 1.5 s: it ends with the process all the same.
      await expect(b).rejects.toThrow(/worker process exited .* while 'slow' ran/);
      expect(Date.now() - started).toBeLessThan(1500 + 1000);
      await expect(worker.backend('fast', request('c'), noLog)).resolves.toEqual({ invocationId: 'c' });
      expect(worker.starts).toBe(2);
      const pids = events('worker.started').map((e) => e.pid);
      expect(new Set(pids).size).toBe(2);
      expect(events('function.timeout')).toHaveLength(1);
    } finally {
      await worker.close();
    }
  });

  it('replaces a worker that dies during an invocation, failing that invocation', async () => {
    const { worker } = await WorkerProcess.start({
      env: process.env,
      functionTimeoutMs: undefined,
      log,
      entry,
    });
    try {
      await expect(worker.backend('crash', request('d'), noLog)).rejects.toThrow(/exited \(code 3\)/);
      await expect(worker.backend('fast', request('e'), noLog)).resolves.toEqual({ invocationId: 'e' });
      expect(worker.starts).toBe(2);
    } finally {
      await worker.close();
    }
  });
});
