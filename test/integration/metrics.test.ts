import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadGatewayConfig } from '../../src/gateway/config.js';
import { Gateway } from '../../src/gateway/server.js';
import { createLogger } from '../../src/shared/log.js';
import { useRig } from '../support/rig.js';

/** One sample's value from a Prometheus text page, or undefined when the series is not there. */
function sample(page: string, series: string): number | undefined {
  const line = page.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('metrics of the worker and the gateway', () => {
  const rig = useRig({ worker: { env: { LOG_LEVEL: 'warn' } }, gateway: { awaitStatus: 'ACTIVE' } });
  const workerMetrics = async () => (await fetch(`http://127.0.0.1:${rig.worker.worker.ports.metrics}/metrics`)).text();

  it("times a request's asset download and large-result upload, and counts their bytes", async () => {
    const input = randomBytes(1024 * 1024 + 17);
    const created = await fetch(`${rig.gateway.url}/v2/nvcf/assets`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ contentType: 'application/octet-stream', description: 'weights' }),
    });
    const asset = (await created.json()) as { assetId: string; uploadUrl: string };
    const put = await fetch(asset.uploadUrl, {
      method: 'PUT',
      headers: { 'content-type': 'application/octet-stream' },
      body: input,
    });
    expect(put.status).toBe(200);
    rig.container.route = async (req, res) => {
      // The output is the input reversed: random bytes the zip cannot shrink.
      const bytes = await readFile(join(String(req.headers['nvcf-asset-dir']), asset.assetId));
      await writeFile(join(String(req.headers['nvcf-large-output-dir']), 'out.bin'), bytes.reverse());
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"done":true}');
    };
    const answer = await fetch(`${rig.gateway.url}/v2/nvcf/pexec/functions/${rig.worker.env.FUNCTION_ID}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'NVCF-INPUT-ASSET-REFERENCES': asset.assetId },
      body: '{}',
      redirect: 'manual',
    });
    expect(answer.status).toBe(302);
    await expect.poll(async () => sample(await workerMetrics(), 'nvcf_worker_result_upload_bytes_count')).toBe(1);
    const page = await workerMetrics();
    expect(sample(page, 'nvcf_worker_asset_download_seconds_count')).toBe(1);
    expect(sample(page, 'nvcf_worker_asset_download_bytes_sum')).toBe(input.length);
    expect(sample(page, 'nvcf_worker_result_upload_seconds_count')).toBe(1);
    // The zip holds the output (random bytes: deflate cannot shrink them) plus its own records.
    expect(sample(page, 'nvcf_worker_result_upload_bytes_sum')).toBeGreaterThan(input.length);
    expect(sample(page, 'nvcf_worker_result_upload_bytes_sum')).toBeLessThan(input.length + 4096);
  });

  it('draws the duration buckets finely between 1 s and 2 min, where GPU jobs spread out', async () => {
    const page = await workerMetrics();
    for (const le of ['1', '2', '5', '10', '20', '30', '60', '120', '3600'])
      expect(sample(page, `nvcf_worker_inference_seconds_bucket{le="${le}"}`)).toBeDefined();
  });

  it('exports process and Node.js metrics on both endpoints', async () => {
    const pages = [await workerMetrics(), await (await fetch(`${rig.gateway.url}/metrics`)).text()];
    for (const page of pages) {
      expect(sample(page, 'process_cpu_seconds_total')).toBeGreaterThan(0);
      expect(sample(page, 'process_resident_memory_bytes')).toBeGreaterThan(0);
      expect(page).toContain('nodejs_eventloop_lag_p99_seconds');
    }
  });

  it('counts gateway calls by route, method and status, without ids in the labels', async () => {
    await fetch(`${rig.gateway.url}/v2/nvcf/pexec/status/00000000-0000-4000-8000-000000000000`);
    const answer = await fetch(`${rig.gateway.url}/metrics`);
    expect(answer.status).toBe(200);
    expect(answer.headers.get('content-type')).toContain('text/plain');
    const page = await answer.text();
    expect(sample(page, 'nvcf_gateway_http_requests_total{route="pexec",method="POST",code="302"}')).toBe(1);
    // Two PUTs to signed storage URLs: the asset from the client, the result zip from the worker.
    expect(sample(page, 'nvcf_gateway_http_requests_total{route="storage",method="PUT",code="200"}')).toBe(2);
    expect(sample(page, 'nvcf_gateway_http_requests_total{route="status",method="GET",code="404"}')).toBe(1);
    // The scrape itself is in flight while the page is drawn.
    expect(sample(page, 'nvcf_gateway_http_in_flight{route="metrics"}')).toBe(1);
    expect(page).not.toMatch(/00000000-0000-4000/);
  });

  for (const [label, bind] of [
    ['a plain logger', false],
    ['a logger that already carries it', true],
  ] as const) {
    it(`writes the gateway's start line with its gatewayId once (given ${label}), the level as a name and the time in ISO form`, async () => {
      const lines: string[] = [];
      const sink = new Writable({
        write(chunk: Buffer, _enc, done) {
          lines.push(...chunk.toString().split('\n').filter(Boolean));
          done();
        },
      });
      const config = loadGatewayConfig({ NATS_URL: rig.natsUrl, GATEWAY_PORT: '0', GATEWAY_ID: 'gw-start-line' });
      const root = createLogger('info', sink);
      const gateway = new Gateway(config, bind ? root.child({ gatewayId: config.gatewayId }) : root);
      await gateway.start();
      await gateway.stop();
      const start = lines.find((l) => l.includes('"gateway listening"'));
      expect(start).toBeDefined();
      expect(start!.match(/"gatewayId":/g)).toHaveLength(1);
      const parsed = JSON.parse(start!) as { level: unknown; time: unknown; gatewayId: unknown };
      expect(parsed).toMatchObject({ level: 'info', gatewayId: 'gw-start-line' });
      expect(new Date(String(parsed.time)).toISOString()).toBe(parsed.time);
    });
  }
});
