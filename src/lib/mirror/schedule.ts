/**
 * The periodic sweep: one request per configured series ("latest"), or, with back-fill, one per
 * newest N versions so that the gallery keeps all of them.
 */
import { toErrorInfo } from '../core/errors';
import type { PipelineDeps } from './stage';

export async function scheduleRequests(
  deps: Pick<PipelineDeps, 'config' | 'queue' | 'boshio' | 'log'>,
): Promise<number> {
  const { config, log } = deps;
  let sent = 0;
  for (const series of config.series) {
    try {
      const versions =
        config.backfillVersions <= 1
          ? ['latest']
          : (await deps.boshio.listReleases(series)).slice(0, config.backfillVersions).map((r) => r.version);
      for (const version of versions) {
        await deps.queue.send({ series, version, reason: 'schedule' });
        sent++;
      }
      log.info('schedule.enqueued', { series, versions });
    } catch (e) {
      // One series failing must not stop the others.
      log.error('schedule.failed', { series, error: toErrorInfo(e) });
    }
  }
  return sent;
}
