/**
 * GET /api/mirror/{series}/{version}: one job; GET /api/mirror: recent jobs, newest first, and the
 * schedule's health (DESIGN §3).
 */
import { app, type HttpRequest, type HttpResponseInit, type InvocationContext } from '@azure/functions';
import { JOB_STATUSES, type JobStatus } from '../lib/jobs/job';
import { jobView } from '../lib/jobs/view';
import { isSeriesName, isStemcellVersion } from '../lib/core/names';
import { errorResponse, json, problem } from './responses';
import { inInvocation, services } from './runtime';

export async function mirrorStatus(
  request: HttpRequest,
  context: InvocationContext,
): Promise<HttpResponseInit> {
  return inInvocation(context, {}, async (log) => {
    const { series, version } = request.params;
    try {
      const { jobs } = services(log);
      if (series !== undefined && version !== undefined) {
        if (!isSeriesName(series) || !isStemcellVersion(version)) {
          return problem(
            400,
            'INVALID_REQUEST',
            'expected /api/mirror/<series>/<version>, e.g. /api/mirror/bosh-azure-hyperv-ubuntu-jammy-go_agent/1.682',
          );
        }
        const job = await jobs.get(series, version);
        if (!job)
          return problem(
            404,
            'NOT_FOUND',
            `no mirror job for ${series} ${version}; POST /api/mirror starts one`,
          );
        return json(200, jobView(job));
      }
      const q = request.query;
      const filterSeries = series ?? q.get('series') ?? undefined;
      const status = q.get('status') ?? undefined;
      if (filterSeries !== undefined && !isSeriesName(filterSeries))
        return problem(400, 'INVALID_REQUEST', `"${filterSeries}" is not a series name`);
      if (status !== undefined && !JOB_STATUSES.includes(status as JobStatus)) {
        return problem(400, 'INVALID_REQUEST', `status must be one of ${JOB_STATUSES.join(', ')}`);
      }
      const limit = q.get('limit');
      if (limit !== null && (!/^\d{1,3}$/.test(limit) || Number(limit) < 1 || Number(limit) > 200))
        return problem(400, 'INVALID_REQUEST', 'limit must be a number from 1 to 200');
      const page = await jobs.list({
        series: filterSeries,
        status: status as JobStatus | undefined,
        limit: limit === null ? undefined : Number(limit),
        next: q.get('next') ?? undefined,
      });
      const schedule = await services(log).scheduleWatch.health(new Date(), true);
      return json(200, {
        jobs: page.jobs.map(jobView),
        ...(page.next ? { next: page.next } : {}),
        schedule,
      });
    } catch (e) {
      return errorResponse(e, log, 'status.failed');
    }
  });
}

app.http('mirrorStatus', {
  route: 'mirror/{series?}/{version?}',
  methods: ['GET'],
  authLevel: 'function',
  handler: mirrorStatus,
});
