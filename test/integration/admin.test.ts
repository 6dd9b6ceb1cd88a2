import { request } from 'undici';
import { describe, expect, it } from 'vitest';
import { invocationFor } from '../support/env.js';
import { useRig } from '../support/rig.js';

async function get(port: number, path: string): Promise<{ status: number; text: string }> {
  const res = await request(`http://127.0.0.1:${port}${path}`);
  return { status: res.statusCode, text: await res.body.text() };
}

describe('the admin endpoints', () => {
  // Each test starts the worker it looks at.
  const rig = useRig({ nats: true, container: true });

  it('report live at once, and ready only while the container is healthy', async () => {
    rig.container.healthStatus = 503;
    const running = await rig.startWorker({ waitFor: 'waiting' });
    const { health } = running.worker.ports;
    expect((await get(health, '/v1/health/live')).status).toBe(200);
    const waiting = await get(health, '/v1/health/ready');
    expect(waiting.status).toBe(503);
    expect(JSON.parse(waiting.text).reasons).toContain('worker is waiting');
    rig.container.healthStatus = 200;
    await expect.poll(async () => (await get(health, '/v1/health/ready')).status, { timeout: 5_000 }).toBe(200);
    rig.container.healthStatus = 500;
    await expect
      .poll(async () => (await get(health, '/v1/health/ready')).text, { timeout: 5_000 })
      .toMatch(/inference container is unhealthy/);
    rig.container.healthStatus = 200;
    await running.stop();
  });

  it('count requests by outcome and expose capacity on /metrics', async () => {
    const running = await rig.startWorker({ env: { MAX_REQUEST_CONCURRENCY: '3' } });
    const { client } = rig;
    await client.result(await client.invoke(invocationFor(running.env), Buffer.from('x')));
    rig.container.route = (_req, res) => void res.writeHead(400).end('{"error":"no"}');
    await client.result(await client.invoke(invocationFor(running.env), Buffer.from('x')));
    // The counters move just after the final is published, so wait for them to settle.
    await expect
      .poll(async () => (await get(running.worker.ports.metrics, '/metrics')).text)
      .toMatch(/outcome="container_error"\} 1/);
    const { status, text } = await get(running.worker.ports.metrics, '/metrics');
    expect(status).toBe(200);
    expect(text).toMatch(/nvcf_worker_requests_total\{outcome="ok"\} 1/);
    expect(text).toMatch(/nvcf_worker_requests_total\{outcome="container_error"\} 1/);
    expect(text).toMatch(/nvcf_worker_capacity 3/);
    expect(text).toMatch(/nvcf_worker_publish_seconds_count 2/);
    await running.stop();
  });
});
