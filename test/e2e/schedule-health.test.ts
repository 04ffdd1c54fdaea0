/**
 * Schedule health as an operator sees it (DESIGN §3, `schedule` in `GET /api/mirror`): the local
 * host serving the real function files records each `mirrorSchedule` run, and when the timer has
 * stopped firing the next invocation of any function says so at error level.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LogLevel } from '../../src/lib/core/log';
import type { LocalHost } from '../../src/local/host';
import { NO_GALLERY, startWorld, type World } from '../support/world';

let world: World;
const lines: Array<{ level: LogLevel; event: string; function?: string }> = [];

beforeAll(async () => {
  world = await startWorld();
});
afterAll(async () => world?.close());

async function startHost(): Promise<LocalHost> {
  return world.startHost({
    over: NO_GALLERY,
    kinds: ['http', 'timer'],
    sink: (level, line) => {
      const { event, function: fn } = JSON.parse(line) as { event: string; function?: string };
      lines.push({ level, event, ...(fn === undefined ? {} : { function: fn }) });
    },
  });
}

async function schedule(host: LocalHost): Promise<Record<string, unknown>> {
  const res = await fetch(`${host.url}/api/mirror`);
  expect(res.status).toBe(200);
  return ((await res.json()) as { schedule: Record<string, unknown> }).schedule;
}

async function waitFor(event: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!lines.some((l) => l.event === event) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
  }
  expect(lines.map((l) => l.event)).toContain(event);
}

describe('schedule health', () => {
  it('GET /api/mirror shows lastRunAt null before the first run, and not overdue', async () => {
    const host = await startHost();
    expect(await schedule(host)).toEqual({ lastRunAt: null, nextDueAt: expect.any(String), overdue: false });
    expect(lines.filter((l) => l.level === 'error')).toEqual([]);
  });

  it('an overdue schedule is logged at error level by the next invocation, and shown', async () => {
    // The last run 400 days ago: overdue for any schedule, even the yearly one the test world sets.
    const longAgo = new Date(Date.now() - 400 * 24 * 3600 * 1000);
    await world.jobs.recordScheduleRun(longAgo);
    const host = await startHost();
    lines.length = 0;
    const s = await schedule(host);
    expect(s).toEqual({ lastRunAt: longAgo.toISOString(), nextDueAt: expect.any(String), overdue: true });
    expect(lines).toContainEqual({ level: 'error', event: 'schedule.overdue', function: 'mirrorStatus' });
  });

  it('a mirrorSchedule run is recorded: lastRunAt moves to it and the schedule is on time again', async () => {
    const host = await startHost();
    lines.length = 0;
    const before = Date.now();
    const res = await fetch(`${host.url}/admin/functions/mirrorSchedule`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ input: '' }),
    });
    expect(res.status).toBe(202);
    await waitFor('schedule.ran');
    // The run itself, coming after the outage, says it was overdue before it recorded itself.
    expect(lines).toContainEqual({ level: 'error', event: 'schedule.overdue', function: 'mirrorSchedule' });
    const s = await schedule(host);
    expect(s.overdue).toBe(false);
    expect(Date.parse(String(s.lastRunAt))).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(String(s.nextDueAt))).toBeGreaterThan(Date.parse(String(s.lastRunAt)));
    const record = await world.jobs.getScheduleRecord();
    expect(record?.lastRunAt).toBe(s.lastRunAt);
  });
});
