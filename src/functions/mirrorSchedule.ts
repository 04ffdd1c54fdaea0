/** Timer: asks for the newest version(s) of every configured series. */
import { app, type InvocationContext, type Timer } from '@azure/functions';
import { scheduleRequests } from '../lib/mirror/schedule';
import { inInvocation, services } from './runtime';

export async function mirrorSchedule(_timer: Timer, context: InvocationContext): Promise<void> {
  const startedAt = new Date();
  // inInvocation looks at the schedule before this run is recorded: a run after an outage says so.
  return inInvocation(context, {}, async (log) => {
    const s = services(log);
    const enqueued = await scheduleRequests({ ...s, log });
    await s.scheduleWatch.recordRun(startedAt, log, { enqueued });
  });
}

app.timer('mirrorSchedule', {
  schedule: '%BASM_SCHEDULE%',
  handler: mirrorSchedule,
});
