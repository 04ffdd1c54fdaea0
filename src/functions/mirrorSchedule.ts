/** Timer: asks for the newest version(s) of every configured series. */
import { app, type InvocationContext, type Timer } from '@azure/functions';
import { scheduleRequests } from '../lib/mirror/schedule';
import { inInvocation, services } from './runtime';

export async function mirrorSchedule(_timer: Timer, context: InvocationContext): Promise<void> {
  return inInvocation(context, {}, async (log) => {
    await scheduleRequests({ ...services(log), log });
  });
}

app.timer('mirrorSchedule', {
  schedule: '%BASM_SCHEDULE%',
  handler: mirrorSchedule,
});
