import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import puppeteer, { type Browser, type Page } from 'puppeteer-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitForStatus, type RunningGateway } from '../support/gateway.js';
import { useRig } from '../support/rig.js';

/** Debian's Chromium (`apt-get install -y chromium`, done by .ci/run), or the one CHROME_PATH names. */
const chromium = [process.env.CHROME_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find(
  (path) => path && existsSync(path),
);
if (!chromium)
  console.warn('console browser test skipped: Chromium not found (apt-get install -y chromium, or set CHROME_PATH)');

const app = fileURLToPath(new URL('../support/lifecycle-app.mjs', import.meta.url));
const artifacts = fileURLToPath(new URL('../artifacts/', import.meta.url));

let gw: RunningGateway;
let browser: Browser;
let page: Page;
let functionId = '';

async function call(method: string, path: string, body: unknown): Promise<Record<string, Record<string, string>>> {
  const res = await fetch(`${gw.url}${path}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, Record<string, string>>;
}

describe.skipIf(!chromium)('the web console, in headless Chromium', { timeout: 120_000 }, () => {
  const rig = useRig({ gateway: true });
  beforeAll(async () => {
    gw = rig.gateway;
    const { function: fn } = await call('POST', '/v2/nvcf/functions', {
      name: 'console-echo',
      inferenceUrl: '/infer',
      localCommand: [process.execPath, app],
    });
    functionId = fn!.id!;
    await call('POST', `/v2/nvcf/deployments/functions/${fn!.id}/versions/${fn!.versionId}`, {
      deploymentSpecifications: [{ gpu: 'L40', minInstances: 1, maxInstances: 1 }],
    });
    await waitForStatus(gw.url, fn!.id!, fn!.versionId!, 'ACTIVE', 120_000);
    browser = await puppeteer.launch({
      executablePath: chromium!,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    });
    page = await browser.newPage();
    await page.setViewport({ width: 1280, height: 900 });
  }, 240_000);
  afterAll(async () => {
    await browser?.close();
  });

  const text = (selector: string) => page.$eval(selector, (el) => el.textContent ?? '');
  const waitForText = (selector: string, pattern: RegExp) =>
    page.waitForFunction(
      `new RegExp(${JSON.stringify(pattern.source)}).test(document.querySelector(${JSON.stringify(selector)})?.textContent ?? '')`,
      { timeout: 60_000 },
    );

  async function submit(body: unknown, stream = false): Promise<void> {
    await page.select('#invoke-function', functionId);
    await page.$eval(
      '#invoke-body',
      (el, value) => ((el as unknown as { value: string }).value = value),
      JSON.stringify(body),
    );
    const checked = await page.$eval('#invoke-stream', (el) => (el as unknown as { checked: boolean }).checked);
    if (checked !== stream) await page.click('#invoke-stream');
    await page.click('#invoke-button');
  }

  it('lists the deployed function as ACTIVE with its ready instance', async () => {
    await page.goto(`${gw.url}/console`);
    await page.waitForSelector('tr[data-function-name="console-echo"] .status-ACTIVE', { timeout: 60_000 });
    await waitForText('tr[data-function-name="console-echo"]', /1\/1 ready/);
    expect(await text('#instances tbody .instance-state')).toBe('ready');
    // Links to the worker's own health and metrics endpoints, which answer.
    const links = await page.$$eval('#instances tbody .instance-ports a', (as) =>
      as.map((a) => ({ text: a.textContent ?? '', href: a.getAttribute('href') ?? '' })),
    );
    expect(links.map((l) => l.text.split(' ')[0])).toEqual(['health', 'metrics']);
    expect((await fetch(links[0]!.href)).status).toBe(200);
    expect(await (await fetch(links[1]!.href)).text()).toContain('nvcf_worker');
  });

  it('invokes the function and shows the request id and the answer', async () => {
    await submit({ hello: 'browser' });
    await waitForText('#result-body', /"hello":"browser"/);
    expect(await text('#result-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(await text('#result-status')).toBe('200 fulfilled');
    await mkdir(artifacts, { recursive: true });
    await page.screenshot({ path: `${artifacts}console.png`, fullPage: true });
  });

  it('shows progress while the request runs, then the answer', async () => {
    await submit({ progress: true });
    await waitForText('#result-percent', /^50%$/);
    expect(await text('#result-partial')).toContain('half');
    expect(await text('#result-status')).toBe('202 in-progress');
    await waitForText('#result-body', /"progress":true/);
  });

  it('shows SSE tokens as they stream', async () => {
    await submit({}, true);
    // The first token is on the page while the stream is still open.
    await page.waitForFunction(
      `(document.querySelector('#result-tokens')?.textContent ?? '').includes('Hello') &&
        !(document.querySelector('#result-tokens')?.textContent ?? '').includes('[DONE]')`,
      { timeout: 60_000 },
    );
    await waitForText('#result-tokens', /DONE/);
    expect((await text('#result-tokens')).split('\n').filter(Boolean)).toEqual([
      '{"token":"Hello"}',
      '{"token":"from"}',
      '{"token":"the"}',
      '{"token":"lifecycle"}',
      '[DONE]',
    ]);
  });

  it('links to the result zip of a large result', async () => {
    await submit({ file: 'out.txt' });
    await page.waitForSelector('#result-zip:not([hidden])', { timeout: 60_000 });
    const href = await page.$eval('#result-zip', (el) => (el as unknown as { href: string }).href);
    expect(href).toContain('/v2/nvcf/storage/results/');
    const zip = await fetch(href);
    expect(zip.status).toBe(200);
    expect(zip.headers.get('content-type')).toMatch(/zip/);
  });
});
