import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Route } from '../support/container.js';
import type { RunningWorker } from '../support/env.js';
import { waitForStatus } from '../support/gateway.js';
import { startProgressExample } from '../support/examples.js';
import { closedPort } from '../support/http.js';
import type { WorkerProcess } from '../support/process.js';
import { useRig } from '../support/rig.js';
import { runInTerminal } from '../support/terminal.js';

const BAR = /\[[#.]{20}\] +\d+%/;

describe('nvcf-sidecar invoke, as a person sees it', () => {
  // The progress example is the rig's function; a second worker serves a plain JSON container.
  const rig = useRig({
    container: { start: startProgressExample },
    worker: { env: { INFERENCE_URL: '/generate', LOG_LEVEL: 'warn' } },
    gateway: { awaitStatus: 'ACTIVE' },
  });
  let echoWorker: RunningWorker;
  /** While set, the echo container answers with this instead. */
  let stepwise: Route | undefined;
  const gatewayEnv = () => ({ NVCF_GATEWAY_URL: rig.gateway.url });
  const terminal = (command: string) => {
    const term = runInTerminal(command, gatewayEnv());
    rig.defer(() => term.kill());
    return term;
  };

  beforeAll(async () => {
    const echo = await rig.startContainer(async (req, res) => {
      if (stepwise) return stepwise(req, res);
      const dir = String(req.headers['nvcf-large-output-dir']);
      if (req.body.toString() === 'big') {
        // A result large enough to be downloaded in many chunks (random: a zip does not shrink it).
        await writeFile(join(dir, 'big.bin'), randomBytes(8 * 1024 * 1024));
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"big":true}');
        return;
      }
      // No trailing newline, as most JSON APIs answer.
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"hello":"world"}');
    });
    echoWorker = await rig.startWorker({ env: { INFERENCE_PORT: String(echo.port), LOG_LEVEL: 'warn' } });
    await waitForStatus(rig.gateway.url, echoWorker.env.FUNCTION_ID!, echoWorker.env.FUNCTION_VERSION_ID!, 'ACTIVE');
  });

  it("shows the body, then a newline, when the body has none (README's npx line)", async () => {
    const term = terminal(`npx nvcf-sidecar invoke ${echoWorker.env.FUNCTION_ID} -d '{"hello":"world"}'`);
    expect(await term.exit).toBe(0);
    const lines = term.screen();
    expect(lines).toContain('{"hello":"world"}');
    expect(term.raw()).toMatch(/\{"hello":"world"\}\r?\n/);
    expect(lines.some((l) => /^request [0-9a-f-]{36}$/.test(l))).toBe(true);
  });

  it('draws one progress bar, redrawn in place, that reaches 100% before the result', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'nvcf-invoke-tty-')), 'result');
    const term = terminal(
      `node bin/nvcf-sidecar.js invoke ${rig.worker.env.FUNCTION_ID} -d '{"steps":5,"delay":0.6}' --poll-seconds 1 --out ${out}`,
    );
    expect(await term.exit).toBe(0);
    const lines = term.screen();
    const bars = lines.filter((l) => BAR.test(l));
    expect(bars).toHaveLength(1);
    expect(bars[0]).toMatch(/\[#{20}\] 100%/);
    // The bar was drawn more than once, each time over itself.
    expect(term.raw().match(/\r\x1b\[K\[[#.]{20}\]/g)!.length).toBeGreaterThan(1);
    const barAt = lines.indexOf(bars[0]!);
    expect(lines.findIndex((l) => l.startsWith('result '))).toBeGreaterThan(barAt);
    expect(lines.findIndex((l) => /^request [0-9a-f-]{36}$/.test(l))).toBeLessThan(barAt);
    const body = lines.findIndex((l) => l.startsWith('{"outputs": ["step-001.txt"'));
    expect(body).toBeGreaterThan(lines.findIndex((l) => l.startsWith('result ')));
  });

  it('without a terminal writes plain lines: the request id, each progress step, no carriage returns', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'nvcf-invoke-plain-')), 'result');
    const cli = rig.spawnSidecar(
      ['invoke', rig.worker.env.FUNCTION_ID!, '-d', '{"steps":4,"delay":0.6}', '--poll-seconds=1', `--out=${out}`],
      gatewayEnv(),
    );
    expect((await cli.exit).code).toBe(0);
    const err = cli.stderr();
    expect(err).not.toContain('\r');
    expect(err).toMatch(/^request [0-9a-f-]{36}$/m);
    expect(err.split('\n').filter((l) => BAR.test(l)).length).toBeGreaterThan(1);
    expect(err).toMatch(/\[#{20}\] 100%/);
    // A pipe gets the body exactly as the container sent it: no newline added.
    expect(cli.stdout()).toBe('{"outputs": ["step-001.txt", "step-002.txt", "step-003.txt", "step-004.txt"]}');
  });

  it('prints each progress step as it comes while its status polls may wait 60 s each', async () => {
    let cli: WorkerProcess | undefined;
    let exited = false;
    const printed = async (text: string) => {
      while (!exited && !cli?.stderr().includes(text)) await sleep(50);
    };
    stepwise = async (req, res) => {
      const dir = String(req.headers['nvcf-large-output-dir']);
      for (const step of [1, 2, 3]) {
        const report = { id: req.headers['nvcf-reqid'], progress: step * 25, partialResponse: { step } };
        await writeFile(join(dir, 'progress'), JSON.stringify(report));
        // The next step is written only once invoke has printed this one: a gateway that held
        // progress to the end of a 60 s window would leave invoke waiting, and the test would time out.
        await printed(`partial: {"step":${step}}`);
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"steps":3}');
    };
    try {
      cli = rig.spawnSidecar(['invoke', echoWorker.env.FUNCTION_ID!, '-d', '{}', '--poll-seconds=60'], gatewayEnv());
      expect((await cli.exit).code).toBe(0);
    } finally {
      exited = true;
      stepwise = undefined;
    }
    const lines = cli.stderr().split('\n');
    const shown = ['25%', 'partial: {"step":1}', '50%', 'partial: {"step":2}', '75%', 'partial: {"step":3}'].map(
      (text) => lines.findIndex((l) => l.includes(text)),
    );
    expect(shown.every((line) => line >= 0)).toBe(true);
    expect(shown).toEqual([...shown].sort((a, b) => a - b));
    expect(cli.stdout()).toBe('{"steps":3}');
  }, 30_000);

  it('shows download progress in bytes for a large result unpacked into --out', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'nvcf-invoke-big-')), 'result');
    const cli = rig.spawnSidecar(['invoke', echoWorker.env.FUNCTION_ID!, '-d', 'big', '--out', out], gatewayEnv());
    expect((await cli.exit).code).toBe(0);
    expect(cli.stderr()).toMatch(/downloading the result: [\d.]+ (KiB|MiB) of [\d.]+ MiB \(\d+%\)/);
    expect(cli.stderr()).toMatch(/downloading the result: ([\d.]+ MiB) of \1 \(100%\)/);
    expect(await readdir(out)).toContain('big.bin');
  });

  it('refuses an --out folder that already holds a result, leaving it as it was', async () => {
    const out = join(await mkdtemp(join(tmpdir(), 'nvcf-invoke-twice-')), 'result');
    const args = ['invoke', rig.worker.env.FUNCTION_ID!, '-d', '{"steps":1,"delay":0}', '--out', out];
    const first = rig.spawnSidecar(args, gatewayEnv());
    expect((await first.exit).code).toBe(0);
    const before = (await readdir(out)).sort();
    const second = rig.spawnSidecar(args, gatewayEnv());
    expect((await second.exit).code).toBe(2);
    expect(second.stderr()).toContain(`--out ${out} already holds`);
    expect((await readdir(out)).sort()).toEqual(before);
  });

  it('names the real cause: a missing -d @file, an unknown function, a gateway that is not there', async () => {
    const missing = rig.spawnSidecar(['invoke', echoWorker.env.FUNCTION_ID!, '-d', '@nope.json'], gatewayEnv());
    expect((await missing.exit).code).toBe(2);
    expect(missing.stderr()).toContain('cannot read nope.json: ENOENT');
    expect(missing.stderr()).not.toContain('gateway');

    const unknown = rig.spawnSidecar(['invoke', '00000000-0000-4000-8000-000000000000', '-d', '{}'], gatewayEnv());
    expect((await unknown.exit).code).toBe(1);
    expect(unknown.stderr()).toMatch(/function 00000000-0000-4000-8000-000000000000 .*\(HTTP 404\)/);
    expect(unknown.stderr()).not.toContain('request unknown');

    const closed = await closedPort();
    const away = rig.spawnSidecar(
      ['invoke', echoWorker.env.FUNCTION_ID!, '--gateway', `http://127.0.0.1:${closed}`],
      {},
    );
    expect((await away.exit).code).toBe(1);
    expect(away.stderr()).toContain(`cannot reach the gateway at http://127.0.0.1:${closed}: ECONNREFUSED`);
    // Three commands, one after the other: more than 60 s on a loaded machine.
  }, 180_000);
});
