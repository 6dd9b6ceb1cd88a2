import { statSync } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { sleepyEcho } from '../support/container.js';
import { invocationFor } from '../support/env.js';
import { isState } from '../support/process.js';
import { useRig } from '../support/rig.js';

describe('the worker process', () => {
  // Workers run as child processes here, each test on a fresh NATS; the rig SIGKILLs any left.
  const rig = useRig({ nats: true, container: sleepyEcho }, { each: true });

  it('hands a request to a second worker after the first is killed with SIGKILL, and the caller sees one final', async () => {
    const first = await rig.spawnWorker({ env: { NATS_ACK_WAIT: '2s', LOG_LEVEL: 'info' }, waitFor: 'running' });
    const invocation = invocationFor(first.env, { headers: [['X-Sleep-Ms', '1500']] });
    const replyTo = await rig.client.invoke(invocation, Buffer.from('survives'));
    await expect.poll(() => rig.container.seen.length).toBe(1);
    first.child.kill('SIGKILL');
    await first.exit;
    const second = await rig.spawnWorker({ env: { ...first.env, WORKER_ID: 'second' } });
    const result = await rig.client.result(replyTo, 30_000);
    expect(result.body.toString()).toBe('survives');
    expect(rig.container.seen).toHaveLength(2);
    // Read the whole response history of the request: exactly one final, from the second worker.
    await sleep(500);
    const finals = [];
    for await (const frame of rig.client.responses(replyTo, AbortSignal.timeout(1_000)))
      if (frame.meta.kind === 'final') finals.push(frame.meta);
    expect(finals).toHaveLength(1);
    expect(finals[0]).toMatchObject({ workerId: 'second', attempt: 2 });
    second.child.kill('SIGTERM');
    expect((await second.exit).code).toBe(0);
  });

  it('on SIGTERM finishes the running request, exits 0, and gives queued work back at once', async () => {
    const first = await rig.spawnWorker({
      env: { MAX_REQUEST_CONCURRENCY: '2', NATS_ACK_WAIT: '60s', LOG_LEVEL: 'info' },
      waitFor: 'running',
    });
    const { env } = first;
    const slow = await rig.client.invoke(
      invocationFor(env, { headers: [['X-Sleep-Ms', '1500']] }),
      Buffer.from('in flight'),
    );
    await expect.poll(() => rig.container.seen.length).toBe(1);
    first.child.kill('SIGTERM');
    await first.waitForLog(isState('draining'));
    // Published while the first worker drains: its open pull request may take some, and must hand them back.
    const queued = await Promise.all(
      [1, 2, 3].map((i) => rig.client.invoke(invocationFor(env), Buffer.from(`queued ${i}`))),
    );
    const inFlight = await rig.client.result(slow);
    expect(inFlight.body.toString()).toBe('in flight');
    expect((await first.exit).code).toBe(0);
    const report = await first.waitForLog((l) => l.msg === 'drained; exiting');
    expect(report).toMatchObject({ finished: 1, aborted: 0 });

    const second = await rig.spawnWorker({ env: { ...env, WORKER_ID: 'second' } });
    // Well inside the 60 s ack wait: nothing is stuck with the worker that left.
    const results = await Promise.all(queued.map((r) => rig.client.result(r, 15_000)));
    expect(results.map((r) => r.body.toString())).toEqual(['queued 1', 'queued 2', 'queued 3']);
    second.child.kill('SIGTERM');
    expect((await second.exit).code).toBe(0);
  });

  it('exits 1 at once on a second SIGTERM', async () => {
    const worker = await rig.spawnWorker({ env: { LOG_LEVEL: 'info' }, waitFor: 'running' });
    await rig.client.invoke(invocationFor(worker.env, { headers: [['X-Sleep-Ms', '30000']] }));
    await expect.poll(() => rig.container.seen.length).toBe(1);
    worker.child.kill('SIGTERM');
    await worker.waitForLog(isState('draining'));
    worker.child.kill('SIGTERM');
    expect((await worker.exit).code).toBe(1);
  });

  it('exits 1 with a termination message when the container never becomes healthy', async () => {
    rig.container.healthStatus = 503;
    const worker = await rig.spawnWorker({ env: { INFERENCE_READY_TIMEOUT: '1s', LOG_LEVEL: 'info' } });
    expect((await worker.exit).code).toBe(1);
    const written = JSON.parse((await readFile(worker.env.TERMINATION_LOG_PATH!, 'utf8')).trim());
    expect(written).toEqual({
      message: expect.stringMatching(/did not become healthy within 1s: health endpoint answered 503, expected 200/),
      isInternal: false,
    });
    // The worker process runs with its umask cleared: what it writes names its own mode.
    expect((await stat(worker.env.TERMINATION_LOG_PATH!)).mode & 0o777).toBe(0o644);
  });

  it('gives the container an output directory that another user can write to (mode 0777)', async () => {
    let mode: number | undefined;
    rig.container.route = (req, res) => {
      mode = statSync(String(req.headers['nvcf-large-output-dir'])).mode & 0o777;
      res.writeHead(200).end('seen');
    };
    const worker = await rig.spawnWorker({ waitFor: 'running' });
    const result = await rig.client.result(await rig.client.invoke(invocationFor(worker.env), Buffer.from('x')));
    expect(result.body.toString()).toBe('seen');
    expect(mode).toBe(0o777);
  });

  it('stops at once on SIGTERM while NATS cannot be reached', async () => {
    const worker = await rig.spawnWorker({ env: { NATS_URL: 'nats://127.0.0.1:1', LOG_LEVEL: 'info' } });
    await worker.waitForLog((l) => l.msg === 'admin listening');
    worker.child.kill('SIGTERM');
    expect((await worker.exit).code).toBe(0);
    expect(worker.lines.some((l) => l.msg === 'stopped before NATS could be reached')).toBe(true);
  });

  it('refuses a bad configuration before connecting, naming the variable', async () => {
    const worker = await rig.spawnWorker({
      env: { NATS_URL: 'nats://127.0.0.1:1', MAX_REQUEST_CONCURRENCY: 'four', FUNCTION_ID: 'not-a-uuid' },
    });
    expect((await worker.exit).code).toBe(2);
    expect(worker.stderr()).toMatch(/MAX_REQUEST_CONCURRENCY is "four"/);
    expect(worker.stderr()).toMatch(/FUNCTION_ID is "not-a-uuid": must be the function id \(a UUID\)/);
    expect(worker.lines.filter((l) => l.msg === 'connected to NATS')).toHaveLength(0);
  });
});
