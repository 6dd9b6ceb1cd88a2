import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { echo } from '../support/container.js';
import { waitForStatus } from '../support/gateway.js';
import { useRig } from '../support/rig.js';

describe('functions and queues as the gateway sees them', () => {
  const rig = useRig({
    container: { route: echo, healthStatus: 503 },
    gateway: true,
    worker: { env: { LOG_LEVEL: 'warn' }, waitFor: 'waiting' },
  });
  const ids = () => ({ gw: rig.gateway, fid: rig.worker.env.FUNCTION_ID!, fvid: rig.worker.env.FUNCTION_VERSION_ID! });

  it('reports DEPLOYING while the container starts, ACTIVE once it is ready, INACTIVE after the worker stops', async () => {
    const { gw, fid, fvid } = ids();
    await waitForStatus(gw.url, fid, fvid, 'DEPLOYING');
    rig.container.healthStatus = 200;
    await waitForStatus(gw.url, fid, fvid, 'ACTIVE');
    const list = (await (await fetch(`${gw.url}/v2/nvcf/functions`)).json()) as {
      functions: { id: string; versionId: string; name: string }[];
    };
    expect(list.functions).toContainEqual(expect.objectContaining({ id: fid, versionId: fvid, name: 'test-function' }));
    const versions = (await (await fetch(`${gw.url}/v2/nvcf/functions/${fid}/versions`)).json()) as {
      functions: unknown[];
    };
    expect(versions.functions).toHaveLength(1);
    expect(await rig.worker.stop()).toBe(0);
    await waitForStatus(gw.url, fid, fvid, 'INACTIVE');
  });

  it('answers 504 when no worker takes the request within the window, and takes it off the queue', async () => {
    const { gw, fid, fvid } = ids();
    const pending = fetch(`${gw.url}/v2/nvcf/pexec/functions/${fid}`, {
      method: 'POST',
      headers: { 'NVCF-POLL-SECONDS': '2' },
      body: 'anyone?',
    });
    // While it waits, the queue APIs see it.
    let queued = 0;
    for (let i = 0; i < 50 && queued === 0; i++) {
      const lengths = (await (await fetch(`${gw.url}/v2/nvcf/queues/functions/${fid}/versions/${fvid}`)).json()) as {
        queues: { queueLength: number }[];
      };
      queued = lengths.queues[0]!.queueLength;
      if (queued === 0) await sleep(50);
    }
    expect(queued).toBe(1);
    const res = await pending;
    expect(res.status).toBe(504);
    expect(res.headers.get('content-type')).toBe('application/problem+json');
    expect(res.headers.get('nvcf-status')).toBe('errored');
    const requestId = res.headers.get('nvcf-reqid')!;
    expect(((await res.json()) as { detail: string }).detail).toContain('no worker');
    const after = (await (await fetch(`${gw.url}/v2/nvcf/queues/functions/${fid}`)).json()) as {
      queues: { queueLength: number }[];
    };
    expect(after.queues[0]!.queueLength).toBe(0);
    expect((await fetch(`${gw.url}/v2/nvcf/pexec/status/${requestId}`)).status).toBe(404);
  });

  it('answers 404 to queue and function lookups of unknown ids', async () => {
    const { gw } = ids();
    expect((await fetch(`${gw.url}/v2/nvcf/functions/00000000-0000-4000-8000-000000000000/versions`)).status).toBe(404);
    expect((await fetch(`${gw.url}/v2/nvcf/queues/functions/not-a-uuid`)).status).toBe(404);
    expect((await fetch(`${gw.url}/v2/nvcf/queues/00000000-0000-4000-8000-000000000000/position`)).status).toBe(404);
  });
});
