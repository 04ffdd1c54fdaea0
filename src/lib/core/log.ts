/**
 * Structured logging: one JSON line per event, with series/version/stage when known. Secrets are
 * registered once and masked in every line, whatever field or message they hide in.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

export type LogLevel = 'info' | 'warn' | 'error';
export type LogFields = Readonly<Record<string, unknown>>;
export type LogSink = (level: LogLevel, line: string) => void;

export interface Logger {
  info(event: string, fields?: LogFields): void;
  warn(event: string, fields?: LogFields): void;
  error(event: string, fields?: LogFields): void;
  /** A logger that adds `fields` (e.g. series, version, stage) to every line. */
  child(fields: LogFields): Logger;
}

const secrets = new Set<string>();
const SECRET_KEYS = /token|secret|password|accountkey|connectionstring|sig$|authorization|^key$/i;
const MASK = '***';

/** Masks `value` in every log line from now on. Short values are ignored: they would mask too much. */
export function registerSecret(value: string | undefined): void {
  if (value !== undefined && value.length >= 8) secrets.add(value);
}

/** Removes registered secrets, SAS signatures and account keys from free text. */
export function redact(text: string): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join(MASK);
  return out
    .replace(/([?&]sig=)[^&\s"]+/gi, `$1${MASK}`)
    .replace(/(AccountKey=)[^;\s"]+/gi, `$1${MASK}`)
    .replace(/(Bearer\s+)[A-Za-z0-9._~+/=-]+/g, `$1${MASK}`);
}

function plain(value: unknown, depth = 0): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return { name: value.name, message: value.message, ...(code === undefined ? {} : { code }) };
  }
  if (typeof value === 'bigint') return value.toString();
  if (value === null || typeof value !== 'object' || depth > 4) return value;
  if (Array.isArray(value)) return value.map((v) => plain(v, depth + 1));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = SECRET_KEYS.test(k) ? MASK : plain(v, depth + 1);
  return out;
}

export function formatLine(level: LogLevel, event: string, fields: LogFields): string {
  const record = { time: new Date().toISOString(), level, event, ...(plain(fields) as object) };
  return redact(JSON.stringify(record));
}

export function createLogger(sink: LogSink, base: LogFields = {}): Logger {
  const emit =
    (level: LogLevel) =>
    (event: string, fields: LogFields = {}) =>
      sink(level, formatLine(level, event, { ...base, ...fields }));
  return {
    info: emit('info'),
    warn: emit('warn'),
    error: emit('error'),
    child: (fields) => createLogger(sink, { ...base, ...fields }),
  };
}

export const stdoutSink: LogSink = (level, line) => {
  (level === 'info' ? process.stdout : process.stderr).write(line + '\n');
};

/** A logger that drops everything: for library callers that pass none. */
export const silentLogger: Logger = createLogger(() => undefined);

const current = new AsyncLocalStorage<Logger>();

/**
 * Runs `fn` with `log` as the logger of everything it does, its async continuations included, and of
 * nothing else: the scope ends with `fn` (AsyncLocalStorage.run), so a later invocation on the same
 * async path never inherits it.
 */
export function runWithLogger<T>(log: Logger, fn: () => T): T {
  return current.run(log, fn);
}

/**
 * A logger for long-lived clients shared by invocations: each line goes to the logger of the
 * invocation it happens in (see runWithLogger), or to `fallback` outside any.
 */
export function ambientLogger(fallback: Logger, fields: LogFields = {}): Logger {
  const pick = (): Logger => current.getStore() ?? fallback;
  return {
    info: (event, f = {}) => pick().info(event, { ...fields, ...f }),
    warn: (event, f = {}) => pick().warn(event, { ...fields, ...f }),
    error: (event, f = {}) => pick().error(event, { ...fields, ...f }),
    child: (f) => ambientLogger(fallback, { ...fields, ...f }),
  };
}
