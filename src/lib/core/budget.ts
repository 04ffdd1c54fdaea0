/**
 * The time budget of one invocation: an AbortSignal that fires when the invocation must checkpoint
 * and hand over, and the deadline behind it, so that a service asking to be called again later
 * (Retry-After) can be told apart from one worth waiting for. The runner makes the budget current
 * for everything a run does (AsyncLocalStorage), so every client call can carry it without each
 * call site passing it on.
 */
import { AsyncLocalStorage } from 'node:async_hooks';

const deadlines = new WeakMap<AbortSignal, number>();
const current = new AsyncLocalStorage<AbortSignal>();

/** A budget of `ms` milliseconds from now. */
export function invocationBudget(ms: number): AbortSignal {
  const signal = AbortSignal.timeout(ms);
  deadlines.set(signal, Date.now() + ms);
  return signal;
}

/** Milliseconds left of `signal`'s budget: 0 once aborted, Infinity for a signal with no deadline. */
export function budgetRemainingMs(signal: AbortSignal | undefined): number {
  if (signal === undefined) return Infinity;
  if (signal.aborted) return 0;
  const deadline = deadlines.get(signal);
  return deadline === undefined ? Infinity : Math.max(0, deadline - Date.now());
}

/** Runs `fn` with `signal` as the current budget. */
export function runWithBudget<T>(signal: AbortSignal, fn: () => T): T {
  return current.run(signal, fn);
}

/** The budget of the run this code is part of, if any. */
export function currentBudget(): AbortSignal | undefined {
  return current.getStore();
}

/** Waits `ms`, or less when `signal` aborts first (resolves either way). */
export function pause(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}
