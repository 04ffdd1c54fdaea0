/**
 * Runs `create` the first time the result is asked for and shares that promise; a failure is not
 * remembered, so the next caller tries again (a storage account briefly unreachable at start).
 */
export function onceUntilFailure<T>(create: () => Promise<T>): () => Promise<T> {
  let pending: Promise<T> | undefined;
  return () => {
    pending ??= create().catch((e: unknown) => {
      pending = undefined;
      throw e;
    });
    return pending;
  };
}
