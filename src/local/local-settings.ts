/** local.settings.json, read the way Core Tools reads it. */
import { existsSync, readFileSync } from 'node:fs';

/** Copies `Values` into the environment where nothing is set yet: the environment wins, as in Core Tools. */
export function applyLocalSettings(file: string, env: NodeJS.ProcessEnv): string[] {
  if (!existsSync(file)) return [];
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as { Values?: Record<string, unknown> };
  const applied: string[] = [];
  for (const [name, value] of Object.entries(parsed.Values ?? {})) {
    // `_comment` and the like annotate the file (JSON has no comments); they are not settings.
    if (env[name] !== undefined || name.startsWith('_')) continue;
    // Core Tools takes strings; numbers and booleans are written as their text.
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') continue;
    env[name] = String(value);
    applied.push(name);
  }
  return applied;
}
