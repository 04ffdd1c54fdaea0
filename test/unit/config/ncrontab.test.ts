/** NCRONTAB as the host's timer reads it: six fields, UTC, and none of croner's extensions. */
import { describe, expect, it } from 'vitest';
import { ncrontabJob, ncrontabProblem } from '../../../src/lib/config/ncrontab';

describe('NCRONTAB', () => {
  it('accepts the six-field forms the host documents', () => {
    for (const e of [
      '0 0 */6 * * *',
      '0 */5 * * * *',
      '0 30 9 * * 1-5',
      '0 30 9 * Jan,Jul Mon-Fri',
      '5,35 0-10/2 * 1 * 0',
      '0 0 0 1 1 *',
    ]) {
      expect(ncrontabProblem(e), e).toBeUndefined();
    }
  });

  it("refuses croner's extensions and other field counts, naming the field", () => {
    const refused: Array<[string, RegExp]> = [
      ['0 0 12 L * *', /day field "L"/],
      ['0 0 12 15W * *', /day field "15W"/],
      ['0 0 12 * * 5#2', /day-of-week field "5#2"/],
      ['0 0 12 ? * *', /day field "\?"/],
      ['0 0 12 * * 7', /day-of-week field "7"/],
      ['@daily', /six fields.*found 1/],
      ['0 */6 * * *', /six fields.*found 5/],
      ['0 0 0 1 1 * 2030', /six fields.*found 7/],
      ['0 60 * * * *', /minute field "60"/],
      ['0 0 5-1 * * *', /hour field "5-1"/],
    ];
    for (const [e, why] of refused) {
      expect(ncrontabProblem(e), e).toMatch(why);
      expect(() => ncrontabJob(e), e).toThrow(why);
    }
  });

  it('evaluates in UTC, a day due only when day and day-of-week both match', () => {
    const from = new Date('2026-01-01T00:00:00.000Z');
    expect(
      ncrontabJob('0 0 */6 * * *')
        .nextRuns(2, from)
        .map((d) => d.toISOString()),
    ).toEqual(['2026-01-01T06:00:00.000Z', '2026-01-01T12:00:00.000Z']);
    // The 13th that is a Friday: February and March 2026.
    expect(
      ncrontabJob('0 0 0 13 * 5')
        .nextRuns(2, from)
        .map((d) => d.toISOString()),
    ).toEqual(['2026-02-13T00:00:00.000Z', '2026-03-13T00:00:00.000Z']);
  });
});
