import { existsSync } from 'node:fs';
import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { closedPort } from '../support/http.js';
import { alive } from '../support/process.js';
import { useRig } from '../support/rig.js';
import { runInTerminal } from '../support/terminal.js';

/** Whether `pid` has ended, waiting a little: a killed child is a zombie until its new parent reaps it. */
async function ended(pid: number): Promise<boolean> {
  for (let i = 0; i < 100 && alive(pid); i++) await sleep(50);
  return !alive(pid);
}

/** The pids, JetStream store and instance folder `dev` printed at start. */
function started(lines: string[]): { pids: number[]; store: string; instance: string } {
  const text = lines.join('\n');
  const pids = [...text.matchAll(/\(pid (\d+)/g)].map((m) => Number(m[1]));
  return { pids, store: /store (\/\S+)\)/.exec(text)![1]!, instance: /instance folder (\/\S+)/.exec(text)![1]! };
}

describe('nvcf-sidecar dev on a terminal', () => {
  // Nothing but containers: dev starts its own NATS. The rig kills whatever a failed test leaves.
  const rig = useRig();
  const terminal = (command: string) => {
    const term = runInTerminal(command);
    rig.defer(() => term.kill());
    return term;
  };
  it('one Ctrl-C under `npm start` drains in the documented order, removes the JetStream store and the instance folder, and exits 0', async () => {
    const term = terminal('npm start -- dev --demo --port 0');
    await term.waitFor(/Ctrl-C stops everything/);
    const { pids, store, instance } = started(term.screen());
    // nats-server, the demo container and the worker beside it.
    expect(pids).toHaveLength(3);
    expect(existsSync(store)).toBe(true);
    expect(existsSync(instance)).toBe(true);
    term.type('\x03');
    expect(await term.exit).toBe(0);
    const lines = term.screen();
    const at = (text: string) => lines.findIndex((l) => l.includes(text));
    // The worker drains while the gateway still answers (it fetches assets and uploads results through it).
    expect(at('the worker drains')).toBeGreaterThan(0);
    expect(at('the gateway takes no more calls')).toBeGreaterThan(at('the worker drains'));
    expect(at('stopping: nats-server')).toBeGreaterThan(at('the gateway takes no more calls'));
    expect(at(`stopped; removed ${store}`)).toBeGreaterThan(at('stopping: nats-server'));
    expect(lines.join('\n')).not.toContain('second signal');
    // Nothing complained on the way down (a NATS stopped too early makes the worker warn of timeouts).
    expect(lines.filter((l) => /"level":"(warn|error|fatal)"/.test(l))).toEqual([]);
    expect(existsSync(store)).toBe(false);
    // The instance's temporary folder (its assets and outputs) goes too: no --shared-dir was given.
    expect(existsSync(instance)).toBe(false);
    for (const pid of pids) expect(await ended(pid)).toBe(true);
  });

  it('a second Ctrl-C during the drain exits at once, and still leaves no JetStream store, instance folder or nats-server behind', async () => {
    // A container that never answers: the worker's drain waits for it.
    const hung = await rig.startContainer(() => new Promise(() => undefined));
    const term = terminal(`node bin/nvcf-sidecar.js dev --inference-url http://127.0.0.1:${hung.port}/infer --port 0`);
    await term.waitFor(/Ctrl-C stops everything/);
    const { pids, store, instance } = started(term.screen());
    const gateway = (await term.waitFor(/gateway +(http:\S+)/))[1]!;
    void fetch(`${gateway}/v2/nvcf/pexec/functions/de7e1000-0000-4000-8000-000000000001`, {
      method: 'POST',
      body: '{}',
    }).catch(() => undefined);
    while (hung.seen.length === 0) await sleep(50);
    term.type('\x03');
    await term.waitFor(/the worker drains its requests/);
    // A repeat within half a second is the same Ctrl-C delivered twice (docs/harness.md): a second one comes later.
    await sleep(600);
    term.type('\x03');
    expect(await term.exit).toBe(1);
    expect(existsSync(store)).toBe(false);
    expect(existsSync(instance)).toBe(false);
    for (const pid of pids) expect(await ended(pid)).toBe(true);
  });
});

describe('nvcf-sidecar dev says what is going on', () => {
  const rig = useRig();
  it('prints the gateway metrics and the worker health and metrics URLs, and they answer', async () => {
    const dev = rig.spawnSidecar(['dev', '--demo', '--port', '0'], {});
    await dev.waitForLog((l) => String(l.msg).startsWith('Ctrl-C stops'), 45_000);
    const text = dev.stdout();
    const health = /worker health +(http:\S+)/.exec(text)![1]!;
    const metrics = /worker metrics +(http:\S+)/.exec(text)![1]!;
    const gatewayMetrics = /gateway metrics +(http:\S+)/.exec(text)![1]!;
    expect(/gateway +http:\/\/127\.0\.0\.1:\d+/.test(text)).toBe(true);
    expect(await (await fetch(gatewayMetrics)).text()).toContain('nvcf_gateway');
    expect((await fetch(health)).status).toBe(200);
    expect(await (await fetch(metrics)).text()).toContain('nvcf_worker');
    dev.child.kill('SIGINT');
    expect((await dev.exit).code).toBe(0);
  });

  it('repeats that the container refuses connections while it is down, instead of staying silent', async () => {
    const port = await closedPort();
    const dev = rig.spawnSidecar(['dev', '--inference-url', `http://127.0.0.1:${port}/infer`, '--port=0'], {});
    const refused = (l: Record<string, unknown>) =>
      String(l.msg).startsWith(`the container at http://127.0.0.1:${port} refuses connections`);
    await dev.waitForLog(refused, 45_000);
    await dev.waitForLog(() => dev.lines.filter(refused).length >= 2, 45_000);
    dev.child.kill('SIGINT');
    expect((await dev.exit).code).toBe(0);
  });

  it("logs the container's own error body when it answers 500", async () => {
    const failing = await rig.startContainer((_req, res) => {
      res.writeHead(500, { 'content-type': 'text/plain' }).end('CUDA out of memory: tried to allocate 2 GiB');
    });
    const shared = await mkdtemp(join(tmpdir(), 'nvcf-dev-shared-'));
    const dev = rig.spawnSidecar(
      ['dev', '--inference-url', `http://127.0.0.1:${failing.port}/infer`, '--port', '0', '--shared-dir', shared],
      {},
    );
    await dev.waitForLog((l) => String(l.msg).startsWith('Ctrl-C stops'), 45_000);
    expect(dev.stdout()).toContain(`shared folder   ${shared}`);
    // One folder per instance, inside the shared one, each holding the two the container sees.
    const [instance, ...more] = await readdir(shared);
    expect(more).toEqual([]);
    expect(dev.stdout()).toContain(`instance folder ${join(shared, instance!)}`);
    expect((await readdir(join(shared, instance!))).sort()).toEqual(['inputAssets', 'response']);
    const gateway = /gateway +(http:\S+)/.exec(dev.stdout())![1]!;
    const res = await fetch(`${gateway}/v2/nvcf/pexec/functions/de7e1000-0000-4000-8000-000000000001`, {
      method: 'POST',
      body: '{}',
    });
    expect(res.status).toBe(500);
    const line = await dev.waitForLog((l) => l.msg === 'the container answered with an error');
    expect(line.containerBody).toBe('CUDA out of memory: tried to allocate 2 GiB');
    dev.child.kill('SIGINT');
    expect((await dev.exit).code).toBe(0);
    // The folder was given, so it is the user's: dev leaves it, and the instance's folder in it.
    expect(existsSync(join(shared, instance!, 'response'))).toBe(true);
  });
});
