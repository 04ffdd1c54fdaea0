/**
 * The app needs no permission the infra does not grant. In Azure the deployment creates the request
 * queues and the job table, and the app's roles are scoped to them (infra/app/rbac.bicep): creating
 * a queue or a table is then refused with 403, which must mean "it is there", not a failed job.
 * Any other failure still fails.
 */
import { RestError, type TableClient } from '@azure/data-tables';
import { RestError as QueueRestError, type QueueClient } from '@azure/storage-queue';
import { describe, expect, it } from 'vitest';
import { JobStore } from '../../../src/lib/jobs/store';
import { RequestQueue } from '../../../src/lib/jobs/request-queue';

function tableThatRefusesCreate(status: number): TableClient {
  return {
    createTable: () => Promise.reject(new RestError('refused', { statusCode: status })),
    getEntity: () => Promise.reject(new RestError('not found', { statusCode: 404 })),
  } as unknown as TableClient;
}

function queueThatRefusesCreate(status: number, sent: string[]): QueueClient {
  return {
    createIfNotExists: () => Promise.reject(new QueueRestError('refused', { statusCode: status })),
    sendMessage: (text: string) => {
      sent.push(text);
      return Promise.resolve({});
    },
  } as unknown as QueueClient;
}

describe('a role scoped to the provisioned table or queue', () => {
  it('the job store reads on when creating the table is forbidden (403)', async () => {
    const store = new JobStore(tableThatRefusesCreate(403));
    await expect(store.get('bosh-azure-hyperv-ubuntu-jammy-go_agent', '1.1')).resolves.toBeUndefined();
  });

  it('any other failure to create the table still fails', async () => {
    const store = new JobStore(tableThatRefusesCreate(500));
    await expect(store.get('bosh-azure-hyperv-ubuntu-jammy-go_agent', '1.1')).rejects.toMatchObject({
      code: 'STORAGE_FAILED',
      message: expect.stringMatching(/^Creating the job table failed/),
    });
  });

  it('the request queue sends when creating the queue is forbidden (403); other failures fail', async () => {
    const sent: string[] = [];
    await new RequestQueue(queueThatRefusesCreate(403, sent)).send({ series: 's', version: '1.1' });
    expect(sent).toHaveLength(1);
    await expect(
      new RequestQueue(queueThatRefusesCreate(503, [])).send({ series: 's', version: '1.1' }),
    ).rejects.toMatchObject({ code: 'STORAGE_FAILED', message: expect.stringMatching(/^Creating queue/) });
  });
});
