/**
 * `npm start`: the Functions app on this machine without Core Tools or an Azure account. Reads
 * local.settings.json like Core Tools, starts an embedded Azurite when the app is pointed at
 * development storage and none is running, then the local host.
 */
import { join } from 'node:path';
import { ConfigError, loadConfig } from '../lib/config/config';
import { toErrorInfo } from '../lib/core/errors';
import { createLogger, stdoutSink } from '../lib/core/log';
import { DEV_STORAGE, DEV_STORAGE_PORTS, devStorageConnectionString } from '../lib/config/dev-storage';
import { isListening, startAzurite, type Azurite } from './azurite';
import { startLocalHost } from './host';
import { applyLocalSettings } from './local-settings';

const log = createLogger(stdoutSink, { component: 'host' });

/** Development storage: an Azurite already on the standard ports, or one of our own persisted in .azurite/. */
async function ensureStorage(env: NodeJS.ProcessEnv, projectDir: string): Promise<Azurite | undefined> {
  const current = env.AzureWebJobsStorage?.trim();
  if (current && current !== DEV_STORAGE) return undefined;
  const up = await Promise.all(Object.values(DEV_STORAGE_PORTS).map(isListening));
  if (up.every(Boolean)) {
    log.info('azurite.reused', { ports: DEV_STORAGE_PORTS });
    env.AzureWebJobsStorage = devStorageConnectionString(DEV_STORAGE_PORTS);
    return undefined;
  }
  if (up.some(Boolean)) {
    throw new Error(
      'some of the development storage ports 10000-10002 are taken by something else: stop it or set AzureWebJobsStorage',
    );
  }
  const location = join(projectDir, '.azurite');
  const azurite = await startAzurite({ location, ports: DEV_STORAGE_PORTS });
  log.info('azurite.started', { ports: DEV_STORAGE_PORTS, location: '.azurite' });
  env.AzureWebJobsStorage = azurite.connectionString;
  return azurite;
}

async function main(): Promise<void> {
  const env = process.env;
  // Core Tools runs from the app folder and reads its local.settings.json there.
  const projectDir = process.cwd();
  const applied = applyLocalSettings(join(projectDir, 'local.settings.json'), env);
  if (applied.length > 0) log.info('settings.loaded', { file: 'local.settings.json', names: applied });
  const port = loadConfig(env).functionsPort;
  const azurite = await ensureStorage(env, projectDir);
  let host;
  try {
    host = await startLocalHost({ port, env, worker: 'process' });
  } catch (e) {
    await azurite?.stop();
    throw e;
  }
  process.stdout.write(
    `\nFunctions:\n\n${host
      .describe()
      .map((l) => `\t${l}\n`)
      .join('\n')}\n`,
  );
  process.stdout.write(`Host listening on ${host.url} (Ctrl+C to stop)\n`);

  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      log.warn('host.forced-exit', { signal });
      process.exit(1);
    }
    stopping = true;
    log.info('host.signal', { signal });
    void host
      .close()
      .then(() => azurite?.stop())
      .then(() => process.exit(0))
      .catch((e: unknown) => {
        log.error('host.stop-failed', { error: toErrorInfo(e) });
        process.exit(1);
      });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((e: unknown) => {
  if (e instanceof ConfigError)
    log.error('host.config-invalid', { setting: e.setting, error: toErrorInfo(e) });
  else log.error('host.start-failed', { error: toErrorInfo(e) });
  process.exit(1);
});
