/** The benchmark's token bucket (`bench/throttle-proxy.ts`) on its virtual clock. */
import { describe, expect, it } from 'vitest';
import { Pacer } from '../../../bench/throttle-proxy';

const MIB = 1024 * 1024;

describe('Pacer', () => {
  it('holds a steady feed to its rate after the burst and counts no idle time', () => {
    const p = new Pacer(60 * MIB, MIB);
    // 120 MiB offered at once: the first MiB goes at once (the burst), the rest takes 119/60 s.
    let wait = 0;
    for (let i = 0; i < 120; i++) wait = p.book(MIB, 100);
    expect(wait).toBeCloseTo(119 / 60, 9);
    expect(p.idleSeconds).toBe(0);
  });

  it('counts as idle the time the rate went unused beyond the burst it may save', () => {
    const p = new Pacer(60 * MIB, MIB);
    p.book(61 * MIB, 100); // one MiB of burst, then booked until 101 s
    p.book(MIB, 100.5); // still within what is booked: no idle; booked until 101 + 1/60 s
    expect(p.idleSeconds).toBe(0);
    // The next byte comes at 103 + 1/60 s: 2 s unused, of which 1/60 s is saved as burst.
    p.book(MIB, 103 + 1 / 60);
    expect(p.idleSeconds).toBeCloseTo(2 - 1 / 60, 9);
  });

  it('refuses a rate that is not positive', () => {
    expect(() => new Pacer(0)).toThrow(/positive rate/);
  });
});
