import { describe, expect, it } from 'vitest';
import { onceUntilFailure } from '../../../src/lib/core/once';

describe('onceUntilFailure', () => {
  it('shares one run between callers and tries again after a failure', async () => {
    let calls = 0;
    const ensure = onceUntilFailure(async () => {
      calls++;
      if (calls === 1) throw new Error('storage not reachable yet');
      return calls;
    });
    await expect(ensure()).rejects.toThrow('not reachable');
    const [a, b] = await Promise.all([ensure(), ensure()]);
    expect([a, b, await ensure()]).toEqual([2, 2, 2]);
    expect(calls).toBe(2);
  });
});
