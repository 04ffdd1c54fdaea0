/** host.json, the Functions host's own settings file, as the app and the local host read it. */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { MirrorError } from '../core/errors';

/** host.json beside the app: looked up from `startDir` (compiled or source tree) towards the root. */
function findHostJson(startDir: string = __dirname): string | undefined {
  for (let dir = startDir, i = 0; i < 6; i++, dir = dirname(dir)) {
    const file = join(dir, 'host.json');
    if (existsSync(file)) return file;
  }
  return undefined;
}

/** The parsed host.json, or undefined when there is none. */
export function readHostJson(startDir: string = __dirname): unknown {
  const file = findHostJson(startDir);
  return file === undefined ? undefined : (JSON.parse(readFileSync(file, 'utf8')) as unknown);
}

/** A .NET TimeSpan as host.json writes it: `[d.]hh:mm:ss[.fff]`, in milliseconds. */
export function parseTimeSpan(value: string): number {
  const m = /^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?$/.exec(value.trim());
  if (!m) throw new MirrorError('CONFIG_INVALID', `host.json: "${value}" is not a time span (hh:mm:ss)`);
  const [, d = '0', h = '0', min = '0', s = '0', frac = '0'] = m;
  const ms = Math.round(Number(`0.${frac}`) * 1000);
  return ((Number(d) * 24 + Number(h)) * 60 + Number(min)) * 60_000 + Number(s) * 1000 + ms;
}
