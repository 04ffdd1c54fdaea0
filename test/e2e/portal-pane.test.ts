/**
 * What the portal's test pane sends: `POST /admin/functions/<name>` with `{ "input": "..." }`. For the
 * queue-triggered worker the input is the message text (JSON, `series` or `series/version`); for the
 * timer it is ignored and one run happens. Sent here exactly so, to the local host serving the real
 * function files, against Azurite and the fake bosh.io.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Job } from '../../src/lib/jobs/job';
import type { LogLevel } from '../../src/lib/core/log';
import type { LocalHost } from '../../src/local/host';
import { NO_GALLERY, SERIES, startWorld, type World } from '../support/world';

const NOBLE = 'bosh-azure-hyperv-ubuntu-noble';

let world: World;
let host: LocalHost | undefined;
const lines: Array<{ level: LogLevel; line: string }> = [];

beforeAll(async () => {
  world = await startWorld();
  for (const v of ['1.801', '1.802', '1.803']) await world.addStemcell(v, { vhdMiB: 8 });
});
afterAll(async () => world?.close());
afterEach(async () => {
  await world.stopHost();
  host = undefined;
});

async function startHost(
  over: Record<string, string>,
  kinds: Array<'http' | 'queue' | 'timer'> = ['http', 'queue', 'timer'],
): Promise<LocalHost> {
  host = await world.startHost({ over, kinds, sink: (level, line) => void lines.push({ level, line }) });
  return host;
}

/** The test pane's call: the input is always a string, whatever the function's trigger. */
async function runFromPane(name: string, input: string): Promise<number> {
  const res = await fetch(`${host!.url}/admin/functions/${name}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ input }),
  });
  await res.arrayBuffer();
  return res.status;
}

const finished = (j: Job) => j.status === 'staged' || j.status === 'failed';

describe('portal test pane: mirrorWorker', () => {
  it('takes the JSON message as text (the worker gets the parsed object)', async () => {
    await startHost(NO_GALLERY);
    const input = JSON.stringify({ series: SERIES, version: '1.801', reason: 'portal' });
    expect(await runFromPane('mirrorWorker', input)).toBe(202);
    const job = await world.waitForJob('1.801', finished);
    expect(job.errorMessage).toBeUndefined();
    expect(job.status).toBe('staged');
    expect(job.reason).toBe('portal');
  });

  it('takes "series/version"', async () => {
    await startHost(NO_GALLERY);
    expect(await runFromPane('mirrorWorker', `${SERIES}/1.802`)).toBe(202);
    const job = await world.waitForJob('1.802', finished);
    expect(job.status).toBe('staged');
  });

  it('takes a plain "series" and mirrors its latest version', async () => {
    await startHost(NO_GALLERY);
    expect(await world.jobs.get(SERIES, '1.803')).toBeUndefined();
    expect(await runFromPane('mirrorWorker', `  ${SERIES}\n`)).toBe(202);
    const job = await world.waitForJob('1.803', finished);
    expect(job.status).toBe('staged');
  });

  it('drops input it cannot understand, saying why, and creates no job', async () => {
    await startHost(NO_GALLERY);
    const before = (await world.jobs.list({ limit: 200 })).jobs.length;
    const seen = lines.length;
    expect(await runFromPane('mirrorWorker', `${SERIES}/1.801/extra`)).toBe(202);
    expect(await runFromPane('mirrorWorker', '{"series": ')).toBe(202);
    const deadline = Date.now() + 10_000;
    const dropped = () => lines.slice(seen).filter((l) => l.line.includes('"worker.bad-message"'));
    while (dropped().length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(dropped().map((l) => l.level)).toEqual(['error', 'error']);
    expect(dropped()[0]!.line).toContain('expected JSON, \\"series\\" or \\"series/version\\"');
    expect((await world.jobs.list({ limit: 200 })).jobs.length).toBe(before);
  });

  it('refuses a call without an input string, as the pane never sends one', async () => {
    await startHost(NO_GALLERY);
    const res = await fetch(`${host!.url}/admin/functions/mirrorWorker`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: { series: SERIES } }),
    });
    expect(res.status).toBe(400);
  });
});

describe('portal test pane: mirrorSchedule', () => {
  it('enqueues one "latest" request per configured series', async () => {
    // No queue trigger served: the messages stay in the queue to be read.
    await startHost({ BASM_STEMCELL_SERIES: `${SERIES}, ${NOBLE}` }, ['http', 'timer']);
    await world.queue.clearMessages();
    const seen = lines.length;
    expect(await runFromPane('mirrorSchedule', '')).toBe(202);
    // The pane answers at once; the run ends with the host's function.succeeded line.
    const ran = () =>
      lines
        .slice(seen)
        .map((l) => JSON.parse(l.line) as { event?: string; function?: string })
        .some((l) => l.event === 'function.succeeded' && l.function === 'mirrorSchedule');
    const deadline = Date.now() + 10_000;
    while (!ran() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(ran()).toBe(true);
    const r = await world.queue.peekMessages({ numberOfMessages: 32 });
    const messages = r.peekedMessageItems.map(
      (m) => JSON.parse(Buffer.from(m.messageText, 'base64').toString('utf8')) as unknown,
    );
    expect(messages).toEqual([
      { series: SERIES, version: 'latest', reason: 'schedule' },
      { series: NOBLE, version: 'latest', reason: 'schedule' },
    ]);
  });
});

describe('a timer whose schedule setting is missing', () => {
  it('is not indexed, with one line naming the setting; the other functions still run', async () => {
    // The host resolves %BASM_SCHEDULE% from the app settings only: the app's default does not count.
    const seen = lines.length;
    await startHost({ ...NO_GALLERY, BASM_SCHEDULE: '' });
    const names = host!.functions.map((f) => f.name);
    expect(names).not.toContain('mirrorSchedule');
    expect(names).toEqual(
      expect.arrayContaining(['mirrorRequest', 'mirrorStatus', 'mirrorWorker', 'mirrorPoison']),
    );
    const notIndexed = lines.slice(seen).filter((l) => l.line.includes('"function.not-indexed"'));
    expect(notIndexed.map((l) => l.level)).toEqual(['error']);
    expect(notIndexed[0]!.line).toContain(
      'app setting BASM_SCHEDULE is referenced by a schedule but not set',
    );
    expect(await runFromPane('mirrorSchedule', '')).toBe(404);
    expect(await runFromPane('mirrorWorker', `${SERIES}/1.801`)).toBe(202);
  });
});
