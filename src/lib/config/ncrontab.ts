/**
 * NCRONTAB, the schedule syntax of the Functions host's timer trigger (Azure docs, "Timer trigger
 * for Azure Functions", NCRONTAB expressions; the host parses it with the NCrontab library): six
 * fields `{second} {minute} {hour} {day} {month} {day-of-week}`, each a list of `*`, a value or a
 * range `a-b`, optionally stepped `/n`; months and days may be three-letter names; day-of-week is
 * 0–6 (Sunday = 0); a day is due when both the day and the day-of-week match. On Flex Consumption
 * (Linux) it is evaluated in UTC.
 *
 * croner evaluates it, but croner accepts more than the host: `L`, `W`, `#`, `?`, nicknames such
 * as `@daily`, five or seven fields, a day-of-week 7. Those are refused here so that a schedule that
 * works locally also indexes in Azure.
 */
import { Cron } from 'croner';
import { MirrorError } from '../core/errors';

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DAYS = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

interface Field {
  name: string;
  min: number;
  max: number;
  names?: readonly string[];
}

const FIELDS: readonly Field[] = [
  { name: 'second', min: 0, max: 59 },
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTHS },
  { name: 'day-of-week', min: 0, max: 6, names: DAYS },
];

function value(text: string, f: Field): number | undefined {
  if (/^\d{1,2}$/.test(text)) {
    const n = Number(text);
    return n >= f.min && n <= f.max ? n : undefined;
  }
  const i = f.names?.indexOf(text.toLowerCase()) ?? -1;
  return i < 0 ? undefined : f === FIELDS[4] ? i + 1 : i;
}

function itemValid(item: string, f: Field): boolean {
  const [range = '', step, ...more] = item.split('/');
  if (more.length > 0) return false;
  if (step !== undefined && (!/^\d{1,2}$/.test(step) || Number(step) < 1)) return false;
  if (range === '*') return true;
  const [a = '', b, ...rest] = range.split('-');
  if (rest.length > 0) return false;
  const from = value(a, f);
  if (from === undefined) return false;
  if (b === undefined) return true;
  const to = value(b, f);
  return to !== undefined && to >= from;
}

/** Why `expression` is not an NCRONTAB schedule the host accepts, or undefined when it is one. */
export function ncrontabProblem(expression: string): string | undefined {
  const parts = expression.trim().split(/\s+/);
  if (parts.length !== FIELDS.length) {
    return `expected six fields (second minute hour day month day-of-week), found ${parts.length}`;
  }
  for (let i = 0; i < FIELDS.length; i++) {
    const f = FIELDS[i]!;
    const part = parts[i]!;
    if (!part.split(',').every((item) => itemValid(item, f))) {
      return `the ${f.name} field "${part}" is not NCRONTAB (${f.min}-${f.max}${f.names ? ' or a three-letter name' : ''}; *, a-b, /n and lists only)`;
    }
  }
  return undefined;
}

/**
 * A croner job for an NCRONTAB schedule, paused until resumed, evaluated in UTC with the host's
 * day rule. Throws `CONFIG_INVALID` naming the problem when the host would refuse the expression.
 */
export function ncrontabJob(expression: string, run?: () => void): Cron {
  const problem = ncrontabProblem(expression);
  if (problem !== undefined) throw new MirrorError('CONFIG_INVALID', `"${expression}": ${problem}`);
  const options = {
    paused: true,
    timezone: 'UTC',
    domAndDow: true,
    mode: '6-part',
    sloppyRanges: true,
  } as const;
  return run ? new Cron(expression.trim(), options, run) : new Cron(expression.trim(), options);
}
