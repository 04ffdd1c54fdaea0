import { describe, expect, it } from 'vitest';
import { encodeQueueMessage, parseQueueMessage, parseRequest } from '../../../src/lib/jobs/requests';

const SERIES = 'bosh-azure-hyperv-ubuntu-jammy-go_agent';

describe('parseRequest (POST /api/mirror body)', () => {
  it('accepts a series with a version, latest by default, force and reason', () => {
    expect(parseRequest({ series: SERIES, version: '1.682', force: true, reason: 'cve' })).toEqual({
      series: SERIES,
      version: '1.682',
      force: true,
      reason: 'cve',
    });
    expect(parseRequest({ series: SERIES })).toEqual({ series: SERIES, version: 'latest' });
  });

  it.each([
    [{}, /series/],
    [{ series: SERIES, version: 1682 }, /version must be string/],
    [{ series: SERIES, verison: '1.682' }, /unknown field "verison"/],
    [{ series: SERIES, continuation: true }, /unknown field "continuation"/],
    [{ series: SERIES, force: 'yes' }, /force must be boolean/],
    [{ series: 'bosh-aws-xen-hvm-ubuntu-jammy-go_agent' }, /not an Azure series/],
    [{ series: '../../etc/passwd' }, /not a stemcell series/],
    [{ series: SERIES, version: '1.682; DROP' }, /not a stemcell version/],
    [{ series: SERIES, version: '1.2.3.4' }, /not a stemcell version/],
    [[SERIES], /must be object/],
  ])('rejects %j', (body, reason) => {
    expect(() => parseRequest(body)).toThrow(reason);
  });
});

describe('parseQueueMessage (what the worker receives)', () => {
  it('takes the object the Node worker hands over for JSON text', () => {
    expect(parseQueueMessage({ series: SERIES, version: '1.682' })).toEqual({
      series: SERIES,
      version: '1.682',
    });
  });
  it('takes JSON text, plain series and series/version as typed in the portal test pane', () => {
    expect(parseQueueMessage(`{"series":"${SERIES}","version":"1.651","force":true}`)).toEqual({
      series: SERIES,
      version: '1.651',
      force: true,
    });
    expect(parseQueueMessage(`  ${SERIES}  `)).toEqual({ series: SERIES, version: 'latest' });
    expect(parseQueueMessage(`${SERIES}/1.651`)).toEqual({ series: SERIES, version: '1.651' });
  });
  it('keeps the continuation flag of the worker’s own messages', () => {
    expect(parseQueueMessage({ series: SERIES, version: '1.6', continuation: true })).toMatchObject({
      continuation: true,
    });
  });
  it('keeps the watched lease owner of a watchdog, which is always a continuation', () => {
    const watchdog = { series: SERIES, version: '1.6', continuation: true, watchdog: 'w1/abc' };
    expect(parseQueueMessage(watchdog)).toEqual(watchdog);
    expect(() => parseQueueMessage({ ...watchdog, continuation: undefined })).toThrow(/is a continuation/);
    expect(() => parseQueueMessage({ ...watchdog, watchdog: '' })).toThrow(/watchdog/);
  });
  it('refuses a watchdog field from a client', () => {
    expect(() => parseRequest({ series: SERIES, watchdog: 'w1/abc' })).toThrow(/unknown field "watchdog"/);
  });
  it('rejects what it cannot read', () => {
    expect(() => parseQueueMessage('{not json')).toThrow(/does not parse/);
    expect(() => parseQueueMessage(`${SERIES}/1.6/extra`)).toThrow(/series\/version/);
    expect(() => parseQueueMessage(42)).toThrow(/must be object/);
  });
  it('encodes as base64 JSON, as the Functions host decodes', () => {
    const wire = encodeQueueMessage({ series: SERIES, version: '1.682' });
    expect(JSON.parse(Buffer.from(wire, 'base64').toString('utf8'))).toEqual({
      series: SERIES,
      version: '1.682',
    });
    expect(parseQueueMessage(Buffer.from(wire, 'base64').toString('utf8'))).toEqual({
      series: SERIES,
      version: '1.682',
    });
  });
});
