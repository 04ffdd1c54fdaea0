/**
 * The local host behind `npm start`, run as a child process from the compiled app against a test
 * Azurite and a small local bosh.io: HTTP routes, the admin route, queue polling with retries and
 * the poison queue, and a clean stop. The pure parts (routes, host.json, message decoding,
 * local.settings.json) are checked in-process.
 */
import type { ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TableClient } from '@azure/data-tables';
import { QueueClient, QueueServiceClient } from '@azure/storage-queue';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAzurite, type Azurite } from '../../src/local/azurite';
import { parseTimeSpan } from '../../src/lib/config/host-json';
import { parseQueueSettings, readQueueSettings } from '../../src/local/host-settings';
import { applyLocalSettings } from '../../src/local/local-settings';
import { createLogger } from '../../src/lib/core/log';
import { createInvoker, type InvocationBackend } from '../../src/local/invoke';
import { decodeMessage, poisonQueueName, QueuePoller } from '../../src/local/queue-poller';
import { matchRoute, parseRoute } from '../../src/local/routes';
import { resolveSettingRefs } from '../../src/local/timer';
import { ensureBuilt, LOCAL_MAIN } from '../support/build';
import { spawnTied } from '../../src/local/tied-spawn';

const MAIN = LOCAL_MAIN;
const JAMMY = 'bosh-azure-hyperv-ubuntu-jammy-go_agent';
const NOBLE = 'bosh-azure-hyperv-ubuntu-noble';
/** Not in the configured series, so only this file's poison test touches it. */
const FLAKY = 'bosh-azure-hyperv-ubuntu-bionic-go_agent';

describe('route templates', () => {
  it('match literals case-insensitively and fill optional parameters', () => {
    const r = parseRoute('mirror/{series?}/{version?}');
    expect(matchRoute(r, ['mirror'])).toEqual({});
    expect(matchRoute(r, ['Mirror', JAMMY])).toEqual({ series: JAMMY });
    expect(matchRoute(r, ['mirror', JAMMY, '1.682'])).toEqual({ series: JAMMY, version: '1.682' });
    expect(matchRoute(r, ['mirror', JAMMY, '1.682', 'x'])).toBeUndefined();
    expect(matchRoute(r, ['mirrors'])).toBeUndefined();
  });

  it('require mandatory parameters, honour int constraints and catch-alls', () => {
    expect(matchRoute(parseRoute('jobs/{id:int}'), ['jobs', '12'])).toEqual({ id: '12' });
    expect(matchRoute(parseRoute('jobs/{id:int}'), ['jobs', 'x'])).toBeUndefined();
    expect(matchRoute(parseRoute('jobs/{id}'), ['jobs'])).toBeUndefined();
    expect(matchRoute(parseRoute('files/{*rest}'), ['files', 'a', 'b'])).toEqual({ rest: 'a/b' });
    expect(() => parseRoute('a/{x?}/{y}')).toThrow(/optional/);
  });
});

describe('host.json queue settings', () => {
  it('reads the app host.json with its time spans', () => {
    const s = readQueueSettings();
    expect(s).toEqual({
      messageEncoding: 'base64',
      batchSize: 1,
      maxDequeueCount: 5,
      visibilityTimeoutMs: 30_000,
      maxPollingIntervalMs: 10_000,
    });
  });

  it('falls back to the host defaults and refuses malformed values', () => {
    expect(parseQueueSettings({}).maxDequeueCount).toBe(5);
    expect(parseQueueSettings({}).batchSize).toBe(16);
    expect(parseTimeSpan('1.00:00:01.5')).toBe(86_401_500);
    expect(() => parseTimeSpan('30s')).toThrow(/time span/);
    expect(() => parseQueueSettings({ extensions: { queues: { maxDequeueCount: 0 } } })).toThrow(
      /maxDequeueCount/,
    );
    expect(() => parseQueueSettings({ extensions: { queues: { messageEncoding: 'utf8' } } })).toThrow(
      /base64/,
    );
  });
});

describe('queue messages and settings', () => {
  it('decodes base64 strictly, naming the encoding when the text is not base64', () => {
    const b64 = Buffer.from('{"series":"s"}').toString('base64');
    expect(decodeMessage(b64, 'base64')).toBe('{"series":"s"}');
    expect(() => decodeMessage('{"series":"s"}', 'base64')).toThrow(/not valid base64.*messageEncoding/);
    expect(decodeMessage('plain', 'none')).toBe('plain');
  });

  it('has a poison queue for every queue but one whose name ends in -poison', () => {
    expect(poisonQueueName('stemcell-mirror-requests')).toBe('stemcell-mirror-requests-poison');
    expect(poisonQueueName('stemcell-mirror-requests-poison')).toBeUndefined();
    expect(poisonQueueName('Work-POISON')).toBeUndefined();
  });

  it('resolves %SETTING% references and names a missing one', () => {
    expect(
      resolveSettingRefs('%BASM_SCHEDULE%', (n) => (n === 'BASM_SCHEDULE' ? '0 */5 * * * *' : undefined)),
    ).toBe('0 */5 * * * *');
    expect(() => resolveSettingRefs('%NOPE%', () => undefined)).toThrow(/NOPE/);
  });

  it('applies local.settings.json Values without overriding the environment', () => {
    const dir = mkdtempSync(join(tmpdir(), 'settings-'));
    const file = join(dir, 'local.settings.json');
    writeFileSync(
      file,
      JSON.stringify({ Values: { A: 'file', B: 'file', C: 7, _comment: 'x', D: { x: 1 } } }),
    );
    const env: NodeJS.ProcessEnv = { A: 'env' };
    expect(applyLocalSettings(file, env)).toEqual(['B', 'C']);
    expect(env).toEqual({ A: 'env', B: 'file', C: '7' });
    expect(applyLocalSettings(join(dir, 'missing.json'), env)).toEqual([]);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe('queue poller (in-process, against Azurite)', () => {
  let azurite: Azurite;
  beforeAll(async () => {
    azurite = await startAzurite();
  });
  afterAll(async () => {
    await azurite?.stop();
  });

  it('keeps a slow message invisible by renewing it, then deletes it with the newest pop receipt', async () => {
    const queue = new QueueClient(azurite.connectionString, 'slow-work');
    const poison = new QueueClient(azurite.connectionString, 'slow-work-poison');
    await queue.createIfNotExists();
    await queue.sendMessage(Buffer.from('{"n":1}').toString('base64'));
    const lines: string[] = [];
    const sink = (_l: unknown, line: string) => void lines.push(line);
    const log = createLogger(sink);
    const seen: { input: unknown; dequeueCount: unknown; visibleWhileRunning: number }[] = [];
    // The function's side of the invocation: what the worker would receive, as RPC data.
    const backend: InvocationBackend = async (_name, request) => {
      // Outlives the 2 s lease: only the renewals keep the message from being handed out again.
      await new Promise((r) => setTimeout(r, 3000));
      const visible = (await queue.peekMessages({ numberOfMessages: 32 })).peekedMessageItems.length;
      seen.push({
        input: request.inputData[0]?.data,
        dequeueCount: request.triggerMetadata.DequeueCount,
        visibleWhileRunning: visible,
      });
      return { invocationId: request.invocationId };
    };
    const poller = new QueuePoller({
      fn: {
        kind: 'queue',
        name: 'slow',
        triggerBinding: 'queueTrigger1',
        queueName: 'slow-work',
        connection: 'AzureWebJobsStorage',
      },
      queue,
      poison,
      settings: {
        messageEncoding: 'base64',
        batchSize: 1,
        maxDequeueCount: 5,
        visibilityTimeoutMs: 0,
        maxPollingIntervalMs: 100,
      },
      invoker: createInvoker(log, sink, backend),
      log,
      leaseSeconds: 2,
    });
    await poller.start();
    await waitFor('the handler to finish', () => (seen.length > 0 ? true : undefined));
    expect(await poller.stop(10_000)).toBe(true);
    // The decoded text as a string, the dequeue count as JSON: the host's shapes.
    expect(seen).toEqual([
      { input: { string: '{"n":1}' }, dequeueCount: { json: '1' }, visibleWhileRunning: 0 },
    ]);
    expect((await queue.getProperties()).approximateMessagesCount).toBe(0);
    expect(lines.some((l) => l.includes('queue.renew-failed') || l.includes('queue.settle-failed'))).toBe(
      false,
    );
  });

  /** A poller over `name` (and its poison queue, if the host has one) whose function is `backend`. */
  function pollerFor(
    name: string,
    backend: InvocationBackend,
    lines: Array<{ level: string; line: string }>,
    leaseSeconds = 1,
  ) {
    const queue = new QueueClient(azurite.connectionString, name);
    const poisonName = poisonQueueName(name);
    const poison =
      poisonName === undefined ? undefined : new QueueClient(azurite.connectionString, poisonName);
    const sink = (level: string, line: string) => void lines.push({ level, line });
    const log = createLogger(sink);
    const poller = new QueuePoller({
      fn: {
        kind: 'queue',
        name: 'fn',
        triggerBinding: 'queueTrigger1',
        queueName: name,
        connection: 'AzureWebJobsStorage',
      },
      queue,
      poison,
      settings: {
        messageEncoding: 'base64',
        batchSize: 1,
        maxDequeueCount: 2,
        visibilityTimeoutMs: 0,
        maxPollingIntervalMs: 100,
      },
      invoker: createInvoker(log, sink, backend),
      log,
      minPollingIntervalMs: 50,
      leaseSeconds,
    });
    return { queue, poison, poller };
  }

  /** A poller whose backend only counts its invocations, with the log lines it writes. */
  function countingPoller(name: string) {
    const lines: Array<{ level: string; line: string }> = [];
    const count = { n: 0 };
    const p = pollerFor(
      name,
      async (_n, r) => {
        count.n++;
        return { invocationId: r.invocationId };
      },
      lines,
    );
    return { ...p, lines, invocations: () => count.n };
  }

  /** Waits for the poison queue to exist and hold messages; their texts as peeked. */
  const movedToPoison = (poison: QueueClient) =>
    waitFor('the message in the poison queue', async () => {
      if (!(await poison.exists())) return undefined;
      const p = await poison.peekMessages({ numberOfMessages: 32 });
      return p.peekedMessageItems.length > 0 ? p.peekedMessageItems : undefined;
    });

  const events = (lines: Array<{ level: string; line: string }>, event: string) =>
    lines.filter((l) => (JSON.parse(l.line) as { event: string }).event === event);

  it('moves text that is not base64 to the poison queue at once, uninvoked, with one error line naming the encoding', async () => {
    const { lines, invocations, queue, poison, poller } = countingPoller('raw-text');
    await queue.createIfNotExists();
    // What `az storage message put --content '{...}'` sends: the JSON text itself.
    const raw = '{"series":"bosh-azure-hyperv-ubuntu-jammy-go_agent","version":"1.682"}';
    await queue.sendMessage(raw);
    await poller.start();
    const moved = await movedToPoison(poison!);
    expect(await poller.stop(5000)).toBe(true);
    expect(moved.map((m) => m.messageText)).toEqual([raw]);
    expect(invocations()).toBe(0);
    expect((await queue.getProperties()).approximateMessagesCount).toBe(0);
    const errors = lines.filter((l) => l.level === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0]!.line).toContain('"queue.poisoned"');
    expect(errors[0]!.line).toMatch(/not valid base64.*messageEncoding is base64/);
  });

  it('poisons a message already dequeued more than maxDequeueCount times without invoking it', async () => {
    const { lines, invocations, queue, poison, poller } = countingPoller('crashed-twice');
    await queue.createIfNotExists();
    const text = Buffer.from('{"n":2}').toString('base64');
    await queue.sendMessage(text);
    // Two receives that never settled, as when the process died during both invocations.
    for (let i = 0; i < 2; i++) {
      await waitFor(`receive ${i + 1}`, async () => {
        const r = await queue.receiveMessages({ numberOfMessages: 1, visibilityTimeout: 1 });
        return r.receivedMessageItems.length > 0 ? true : undefined;
      });
    }
    await waitFor('the message to be visible again', async () =>
      (await queue.peekMessages()).peekedMessageItems.length > 0 ? true : undefined,
    );
    await poller.start();
    const moved = await movedToPoison(poison!);
    expect(await poller.stop(5000)).toBe(true);
    expect(moved.map((m) => m.messageText)).toEqual([text]);
    expect(invocations()).toBe(0);
    const poisoned = events(lines, 'queue.poisoned');
    expect(poisoned).toHaveLength(1);
    expect(poisoned[0]!.line).toMatch(/dequeued 3 times, more than maxDequeueCount 2/);
  });

  it('on a -poison queue does not release a failing message, and leaves it alone past the maximum', async () => {
    const lines: Array<{ level: string; line: string }> = [];
    const counts: unknown[] = [];
    const { queue, poison, poller } = pollerFor(
      'work-poison',
      async (_n, r) => {
        counts.push(r.triggerMetadata.DequeueCount?.json);
        throw new Error('fails every time');
      },
      lines,
    );
    expect(poison).toBeUndefined();
    await queue.createIfNotExists();
    await queue.sendMessage(Buffer.from('{"n":3}').toString('base64'));
    await poller.start();
    // Deliveries 1 and 2 are invoked and fail; each comes back only when its 1 s lock ends (no
    // release at visibilityTimeout 0). The third delivery is over the maximum: left alone.
    await waitFor('the third delivery to be left alone', () =>
      events(lines, 'queue.left-alone').length > 0 ? true : undefined,
    );
    expect(await poller.stop(5000)).toBe(true);
    expect(counts).toEqual(['1', '2']);
    expect(events(lines, 'queue.not-released')).toHaveLength(2);
    expect(events(lines, 'queue.retry')).toHaveLength(0);
    // Still in its queue, for an operator to see; no work-poison-poison queue was ever made.
    await waitFor('the message to be visible again', async () =>
      (await queue.peekMessages()).peekedMessageItems.length > 0 ? true : undefined,
    );
    const names: string[] = [];
    for await (const q of QueueServiceClient.fromConnectionString(azurite.connectionString).listQueues())
      names.push(q.name);
    expect(names).not.toContain('work-poison-poison');
  });
});

// ---------------------------------------------------------------------------------------------
// The compiled host as a child process.

interface Release {
  version: string;
  body: Buffer;
}

/** bosh.io's API and downloads; `flakyAnswers` good API answers for FLAKY, then a non-list (transient). */
function startBoshIo(releases: Record<string, Release[]>) {
  let flakyAnswers = 1;
  const apiCalls: string[] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const port = (server.address() as AddressInfo).port;
    const api = /^\/api\/v1\/stemcells\/([^/]+)$/.exec(url.pathname);
    if (req.method === 'GET' && api) {
      const series = decodeURIComponent(api[1]!);
      apiCalls.push(series);
      if (series === FLAKY && flakyAnswers-- <= 0) {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"error":"maintenance"}');
        return;
      }
      const list = (releases[series] ?? []).map((r) => ({
        name: series,
        version: r.version,
        regular: {
          url: `http://127.0.0.1:${port}/d/${series}/${r.version}.tgz`,
          size: r.body.length,
          md5: '',
          sha1: createHash('sha1').update(r.body).digest('hex'),
          sha256: createHash('sha256').update(r.body).digest('hex'),
        },
      }));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(list));
      return;
    }
    const dl = /^\/d\/([^/]+)\/([^/]+)\.tgz$/.exec(url.pathname);
    const rel = dl && releases[dl[1]!]?.find((r) => r.version === dl[2]);
    if (req.method === 'GET' && rel) {
      res.writeHead(200, {
        'content-type': 'application/octet-stream',
        'content-length': String(rel.body.length),
      });
      res.end(rel.body);
      return;
    }
    res.writeHead(404).end();
  });
  return new Promise<{ url: string; apiCalls: string[]; close(): Promise<void> }>((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        apiCalls,
        close: () =>
          new Promise<void>((r) => {
            server.closeAllConnections();
            server.close(() => r());
          }),
      }),
    ),
  );
}

type Event = Record<string, unknown> & { event: string };

async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined> | T | undefined,
  limitMs = 20_000,
): Promise<T> {
  const deadline = Date.now() + limitMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('npm start (compiled local host as a child process)', () => {
  let azurite: Azurite;
  let boshio: Awaited<ReturnType<typeof startBoshIo>>;
  let child: ChildProcess;
  let base: string;
  let cwd: string;
  let table: TableClient;
  const events: Event[] = [];
  let output = '';
  const exited = { code: null as number | null, signal: null as string | null, done: false };

  const entity = async (series: string, version: string) => {
    try {
      return await table.getEntity<Record<string, unknown>>(series, version);
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 404) return undefined;
      throw e;
    }
  };
  const post = (path: string, body: unknown, type = 'application/json') =>
    fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': type },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });

  beforeAll(async () => {
    ensureBuilt();
    const body = (n: number) => randomBytes(64 * 1024 + n);
    boshio = await startBoshIo({
      [JAMMY]: [
        { version: '1.700', body: body(1) },
        { version: '1.682', body: body(2) },
        { version: '1.681', body: body(3) },
      ],
      [NOBLE]: [
        { version: '1.50', body: body(4) },
        { version: '1.49', body: body(6) },
      ],
      [FLAKY]: [{ version: '1.300', body: body(5) }],
    });
    azurite = await startAzurite();
    table = TableClient.fromConnectionString(azurite.connectionString, 'stemcellmirrorjobs', {
      allowInsecureConnection: true,
    });
    // The app folder of the child: local.settings.json there is read, the environment wins over it.
    cwd = mkdtempSync(join(tmpdir(), 'local-host-'));
    writeFileSync(
      join(cwd, 'local.settings.json'),
      JSON.stringify({
        IsEncrypted: false,
        Values: {
          BASM_STEMCELL_SERIES: `${JAMMY},${NOBLE}`,
          FUNCTIONS_PORT: '1',
          BASM_SCHEDULE: '0 0 0 1 1 *',
        },
      }),
    );
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (!/^(AzureWebJobs|BASM_|AZURE_|FUNCTIONS_)/.test(k)) env[k] = v;
    }
    Object.assign(env, {
      AzureWebJobsStorage: azurite.connectionString,
      // Wins over the file's 1; 0 lets the host pick a free port, which its listing names.
      FUNCTIONS_PORT: '0',
      BASM_BOSH_IO_URL: boshio.url,
      BASM_LOCAL_VISIBILITY_TIMEOUT_SECONDS: '0',
      BASM_LOCAL_MAX_POLLING_INTERVAL_MS: '200',
    });
    child = spawnTied(process.execPath, [MAIN], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let pending = '';
    const take = (d: Buffer) => {
      output += d.toString();
      pending += d.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const l of lines) {
        if (!l.startsWith('{')) continue;
        try {
          events.push(JSON.parse(l) as Event);
        } catch {
          // a plain line of the start-up listing
        }
      }
    };
    child.stdout!.on('data', take);
    child.stderr!.on('data', take);
    child.on('exit', (code, signal) => Object.assign(exited, { code, signal, done: true }));
    // Started: the log event (stderr) and the listing that ends with this line (stdout), which
    // arrive on two pipes in either order.
    await waitFor('the host to start', () => {
      if (exited.done) throw new Error(`the host exited (${exited.code}):\n${output}`);
      const listed = /^Host listening on (http:\/\/127\.0\.0\.1:(\d+)) \(Ctrl/m.exec(output);
      if (listed) base = listed[1]!;
      return listed ? events.find((e) => e.event === 'host.started') : undefined;
    });
    expect(Number(new URL(base).port)).toBeGreaterThan(1);
  });

  afterAll(async () => {
    if (child && !exited.done) child.kill('SIGKILL');
    await azurite?.stop();
    await boshio?.close();
    if (cwd) rmSync(cwd, { recursive: true, force: true });
  });

  it('lists the registered functions like Core Tools', () => {
    expect(output).toContain(`mirrorRequest: [POST] ${base}/api/mirror`);
    expect(output).toContain(`mirrorStatus: [GET] ${base}/api/mirror/{series?}/{version?}`);
    expect(output).toContain('mirrorWorker: queueTrigger (stemcell-mirror-requests)');
    expect(output).toContain('mirrorPoison: queueTrigger (stemcell-mirror-requests-poison)');
    // From local.settings.json, since the environment does not set it.
    expect(output).toContain('mirrorSchedule: timerTrigger (0 0 0 1 1 *');
  });

  it('answers 404 off the routes and, as the host does, for a method no function takes there', async () => {
    expect((await fetch(`${base}/api/nothing-here`)).status).toBe(404);
    expect((await fetch(`${base}/elsewhere`)).status).toBe(404);
    const r = await fetch(`${base}/api/mirror`, { method: 'DELETE' });
    expect(r.status).toBe(404);
    expect(r.headers.get('allow')).toBeNull();
  });

  it('POST /api/mirror answers 202 and the worker picks the job up from the queue', async () => {
    const r = await post('/api/mirror', { series: JAMMY, version: '1.682' });
    expect(r.status).toBe(202);
    const location = r.headers.get('location');
    expect(location).toBe(`${base}/api/mirror/${JAMMY}/1.682`);
    const job = await waitFor('the job to leave queued', async () => {
      const s = await fetch(location!);
      expect(s.status).toBe(200);
      const j = (await s.json()) as { status: string; stage: string; attempts: number };
      return j.status !== 'queued' ? j : undefined;
    });
    expect(job.attempts).toBeGreaterThanOrEqual(1);
    const row = await entity(JAMMY, '1.682');
    expect(row?.status).not.toBe('queued');
    expect(['queued', 'resolve']).not.toContain(row?.stage);
    const picked = events.find(
      (e) =>
        e.event === 'function.started' &&
        e.function === 'mirrorWorker' &&
        e.trigger === 'queue stemcell-mirror-requests',
    );
    expect(picked).toBeDefined();
    expect(
      events.some((e) => e.function === 'mirrorWorker' && e.series === JAMMY && e.dequeueCount === 1),
    ).toBe(true);
  });

  it('admin route: mirrorSchedule enqueues the latest of every configured series', async () => {
    expect((await post('/admin/functions/mirrorSchedule', { input: '' })).status).toBe(202);
    const jammy = await waitFor('the scheduled jammy job', () => entity(JAMMY, '1.700'));
    const noble = await waitFor('the scheduled noble job', () => entity(NOBLE, '1.50'));
    expect(jammy.reason).toBe('schedule');
    expect(noble.reason).toBe('schedule');
    const enqueued = events.filter((e) => e.event === 'schedule.enqueued').map((e) => e.series);
    expect(enqueued.sort()).toEqual([JAMMY, NOBLE].sort());
  });

  it('admin route: mirrorWorker takes the plain text series/version the test pane sends', async () => {
    expect((await post('/admin/functions/mirrorworker', { input: `${JAMMY}/1.681` })).status).toBe(202);
    const row = await waitFor('the worker to claim the job from the admin route', async () => {
      const r = await entity(JAMMY, '1.681');
      return Number(r?.attempts ?? 0) >= 1 ? r : undefined;
    });
    expect(row.reason).toBeUndefined();
    const started = events.find((e) => e.event === 'function.started' && e.trigger === 'admin');
    expect(started?.function).toBe('mirrorWorker');
    expect(
      events.some(
        (e) =>
          e.invocationId === started?.invocationId &&
          e.series === JAMMY &&
          e.version === '1.681' &&
          // No message behind a test-pane call: the host gives dequeueCount 0 and no id.
          e.dequeueCount === 0,
      ),
    ).toBe(true);
  });

  it('admin route: 404 for an unknown function, 400 without a body, without input or with a body that is not JSON', async () => {
    expect((await post('/admin/functions/noSuchFunction', { input: 'x' })).status).toBe(404);
    expect((await post('/admin/functions/mirrorWorker', {})).status).toBe(400);
    // The host refuses an admin call without a body, whatever the trigger.
    expect((await post('/admin/functions/mirrorWorker', '')).status).toBe(400);
    expect((await post('/admin/functions/mirrorSchedule', '')).status).toBe(400);
    expect((await post('/admin/functions/mirrorWorker', 'input=x', 'text/plain')).status).toBe(400);
    expect((await post('/admin/functions/mirrorRequest', { input: 'x' })).status).toBe(400);
    expect((await fetch(`${base}/admin/functions/mirrorWorker`)).status).toBe(405);
  });

  it('retries a failing message until maxDequeueCount, then the poison queue marks the job failed', async () => {
    const r = await post('/api/mirror', { series: FLAKY, version: '1.300' });
    expect(r.status).toBe(202);
    const failed = await waitFor(
      'the poisoned job to fail',
      async () => {
        const row = await entity(FLAKY, '1.300');
        return row?.status === 'failed' ? row : undefined;
      },
      30_000,
    );
    expect(failed.errorCode).toBe('UPSTREAM_UNAVAILABLE');
    expect(String(failed.errorMessage)).toMatch(/gave up/);
    const deliveries = events
      .filter((e) => e.event === 'worker.retry' && e.series === FLAKY)
      .map((e) => e.dequeueCount);
    expect(deliveries).toEqual([1, 2, 3, 4, 5]);
    expect(
      events.some((e) => e.event === 'queue.poisoned' && e.poisonQueue === 'stemcell-mirror-requests-poison'),
    ).toBe(true);
    expect(events.some((e) => e.event === 'function.started' && e.function === 'mirrorPoison')).toBe(true);
  });

  it('runs the functions in a worker process, with the host message lock and functionTimeout', () => {
    const started = events.find((e) => e.event === 'host.started')!;
    expect(started.worker).toBe('process');
    expect((started.queues as { messageLockSeconds: number }).messageLockSeconds).toBe(600);
    expect(started.functionTimeoutSeconds).toBe(1800);
    const worker = events.find((e) => e.event === 'worker.started');
    expect(worker?.pid).not.toBe(child.pid);
  });

  it('accepts a JSON string message ("series/version" with the quotes), as Azure does', async () => {
    const queue = new QueueClient(azurite.connectionString, 'stemcell-mirror-requests');
    await queue.sendMessage(Buffer.from(JSON.stringify(`${NOBLE}/1.49`)).toString('base64'));
    // Its download is not a stemcell, so the job ends failed: what matters is that it ran.
    const row = await waitFor('the job to run to its end', async () => {
      const r = await entity(NOBLE, '1.49');
      return r?.status === 'failed' || r?.status === 'staged' ? r : undefined;
    });
    expect(Number(row.attempts)).toBeGreaterThanOrEqual(1);
    expect(row.errorCode).toBe('ARCHIVE_INVALID');
  });

  it('poisons raw JSON text (az storage message put) uninvoked, with one error line naming the encoding', async () => {
    const queue = new QueueClient(azurite.connectionString, 'stemcell-mirror-requests');
    const poison = new QueueClient(azurite.connectionString, 'stemcell-mirror-requests-poison');
    const raw = JSON.stringify({ series: NOBLE, version: '1.50', reason: 'raw' });
    const seen = events.length;
    await queue.sendMessage(raw);
    // The poison queue's listener cannot decode it either; with no poison queue of its own it
    // leaves the message where an operator finds it.
    await waitFor('the poison listener to leave it alone', () =>
      events.slice(seen).find((e) => e.event === 'queue.left-alone'),
    );
    // Lines about jobs (they carry a series) belong to other tests' work still finishing.
    const errors = events.slice(seen).filter((e) => e.level === 'error' && e.series === undefined);
    expect(errors.map((e) => e.event)).toEqual(['queue.poisoned']);
    expect(String(errors[0]!.reason)).toMatch(/not valid base64.*messageEncoding is base64/);
    expect(errors[0]!.queue).toBe('stemcell-mirror-requests');
    const left = await poison.receiveMessages({ numberOfMessages: 32, visibilityTimeout: 1 });
    expect(left.receivedMessageItems).toHaveLength(0); // still invisible: held by the listener
    expect(events.slice(seen).some((e) => e.event === 'function.started')).toBe(false);
    expect((await poison.getProperties()).approximateMessagesCount).toBeGreaterThanOrEqual(1);
  });

  it('stops cleanly on SIGTERM', async () => {
    child.kill('SIGTERM');
    await waitFor('the host to exit', () => (exited.done ? true : undefined), 40_000);
    expect(exited.code).toBe(0);
    expect(events.find((e) => e.event === 'host.stopped')).toBeDefined();
  });
});
