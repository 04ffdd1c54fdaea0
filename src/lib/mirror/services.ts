/**
 * The composition root: one set of clients per process, built from the configuration on first use.
 * Functions, the local host and the CLI all get their collaborators here.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { TokenCredential } from '@azure/identity';
import { BoshIoClient } from '../boshio/client';
import { queueClient, tableClient, vhdContainer, POISON_QUEUE } from '../azure/storage-clients';
import { describeConfig, getConfig, type Config } from '../config/config';
import { createAzureCredential } from '../azure/credential';
import { GalleryPublisher } from '../azure/gallery';
import { JobStore } from '../jobs/store';
import type { Logger } from '../core/log';
import { ambientLogger, registerSecret } from '../core/log';
import { createNotifier } from '../notify/github';
import type { PipelineDeps } from './stage';
import { RequestQueue } from '../jobs/request-queue';
import { ScheduleWatch } from './schedule-watch';

export type Services = Omit<PipelineDeps, 'log' | 'onProgress'> & {
  poisonQueue: RequestQueue;
  scheduleWatch: ScheduleWatch;
};

let cached: Services | undefined;

export function createServices(config: Config, startLog: Logger): Services {
  // The clients outlive the invocation that built them: log through whichever invocation is running.
  const log = ambientLogger(startLog);
  let credential: TokenCredential | undefined;
  const lazyCredential = () => (credential ??= createAzureCredential(config));
  if (config.notify.github?.token.kind === 'setting') registerSecret(config.notify.github.token.token);
  if (config.vhdStorage.kind === 'connectionString') registerSecret(config.vhdStorage.connectionString);
  if (config.hostStorage.kind === 'connectionString') registerSecret(config.hostStorage.connectionString);
  const notifier = config.notify.github ? createNotifier(config, lazyCredential(), log) : undefined;
  startLog.info('app.configured', {
    ...describeConfig(config),
    ...(notifier ? {} : { notifications: 'off: no GitHub token configured' }),
  });
  const jobs = new JobStore(tableClient(config, lazyCredential));
  return {
    config,
    jobs,
    scheduleWatch: new ScheduleWatch(jobs, config.schedule),
    queue: new RequestQueue(queueClient(config, lazyCredential)),
    poisonQueue: new RequestQueue(queueClient(config, lazyCredential, POISON_QUEUE)),
    boshio: new BoshIoClient({ baseUrl: config.boshIoUrl, allowedHosts: config.allowedDownloadHosts, log }),
    container: vhdContainer(config, lazyCredential),
    gallery: config.gallery
      ? new GalleryPublisher(config.gallery, lazyCredential(), { endpoint: config.armEndpoint, log })
      : undefined,
    notifier,
    pollDelaySeconds: config.galleryPollSeconds,
    workerId: `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`,
  };
}

/** The process-wide services; `log` is used for start-up messages only. */
export function getServices(log: Logger): Services {
  cached ??= createServices(getConfig(), log);
  return cached;
}

/** For tests and the local host, which change settings between runs. */
export function resetServices(): void {
  cached = undefined;
}
