import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { createHealthServer } from '../../src/shared/probe-servers.js';
import { loadWorkerConfig } from '../../src/worker/config.js';
import { closedPort } from '../support/http.js';
import { readRepoFile, repoPath } from '../support/manifests.js';

interface Instruction {
  keyword: string;
  args: string;
}
interface Stage {
  from: string;
  name: string;
  instructions: Instruction[];
}

/** The Dockerfile's stages and instructions: continuation lines joined, comments dropped, ARGs before FROM resolved. */
function parseDockerfile(text: string): { stages: Stage[]; comments: string } {
  const logical = text
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .filter((line) => line.trim() !== '');
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const line of logical) {
    const [, keyword, args] = /^\s*(\w+)\s+(.*)$/.exec(line) ?? [];
    if (!keyword || args === undefined) throw new Error(`Dockerfile: cannot read "${line}"`);
    const upper = keyword.toUpperCase();
    if (upper === 'ARG' && stages.length === 0) {
      const [name, value = ''] = args.split('=');
      globalArgs.set(name!, value);
    } else if (upper === 'FROM') {
      const [image, as, name] = args.replace(/\$\{(\w+)\}/g, (_m, v: string) => globalArgs.get(v) ?? '').split(/\s+/);
      stages.push({ from: image!, name: as?.toUpperCase() === 'AS' ? name! : String(stages.length), instructions: [] });
    } else {
      if (stages.length === 0) throw new Error(`Dockerfile: ${upper} before the first FROM`);
      stages.at(-1)!.instructions.push({ keyword: upper, args: args.trim() });
    }
  }
  const comments = text
    .split('\n')
    .filter((line) => /^\s*#/.test(line))
    .join('\n');
  return { stages, comments };
}

/** Whether .dockerignore leaves `path` in the build context (last matching pattern wins, `!` re-includes). */
function inContext(patterns: string[], path: string): boolean {
  const regex = (glob: string) =>
    new RegExp(
      `^${glob
        .replace(/[.+^${}()|[\]\\]/g, '\\$&')
        .replace(/\*\*\//g, '\u0000')
        .replace(/\*/g, '[^/]*')
        .replace(/\?/g, '[^/]')
        .replace(/\u0000/g, '(?:.*/)?')}$`,
    );
  const parents = path.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
  let included = true;
  for (const pattern of patterns) {
    const negated = pattern.startsWith('!');
    const re = regex(negated ? pattern.slice(1) : pattern);
    if (parents.some((p) => re.test(p))) included = negated;
  }
  return included;
}

describe('the Dockerfile', () => {
  const { stages, comments } = parseDockerfile(readRepoFile('Dockerfile'));
  const runtime = stages.at(-1)!;
  const all = (keyword: string, stage = runtime) => stage.instructions.filter((i) => i.keyword === keyword);
  const ignore = readRepoFile('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

  it('builds in stages on a current LTS Node.js, and runs the built entry point', () => {
    expect(stages.map((s) => s.name)).toEqual(['build', 'deps', 'nats', 'runtime']);
    const node = /^node:(\d+)-/.exec(runtime.from);
    // Even-numbered lines become LTS; 24 is in LTS until 2028.
    expect(Number(node?.[1]) % 2).toBe(0);
    expect(Number(node?.[1])).toBeGreaterThanOrEqual(22);
    expect(all('ENTRYPOINT')[0]!.args).toBe('["node", "/app/dist/main.js"]');
    expect(existsSync(repoPath('src/main.ts'))).toBe(true);
  });

  it('copies only what exists and what .dockerignore lets into the context', () => {
    const names = stages.map((s) => s.name);
    for (const [index, stage] of stages.entries())
      for (const copy of all('COPY', stage)) {
        const parts = copy.args.split(/\s+/);
        const from = /^--from=(.+)$/.exec(parts[0]!)?.[1];
        if (from) {
          expect(names.slice(0, index), copy.args).toContain(from);
          continue;
        }
        for (const source of parts.slice(0, -1)) {
          expect(existsSync(repoPath(source)), source).toBe(true);
          expect(inContext(ignore, source), `${source} is left out of the build context`).toBe(true);
        }
      }
  });

  it('keeps dependencies, git history, build output and test artefacts out of the build context', () => {
    for (const path of ['node_modules', 'node_modules/yaml/package.json', '.git', '.git/HEAD', 'dist', 'coverage'])
      expect(inContext(ignore, path), path).toBe(false);
    for (const path of [
      'test/unit/image.test.ts',
      'test/artifacts/console.png',
      'bench/results/x.json',
      'examples/02-progress/__pycache__/a.pyc',
    ])
      expect(inContext(ignore, path), path).toBe(false);
    expect(inContext(ignore, 'src/main.ts')).toBe(true);
  });

  it('checks its health with a script the image holds', () => {
    const [healthcheck] = all('HEALTHCHECK');
    expect(healthcheck?.args).toMatch(/CMD \["node", "\/app\/ops\/docker-healthcheck\.mjs"\]/);
    const copies = all('COPY').map((c) => c.args);
    expect(copies).toContain('ops/docker-healthcheck.mjs ./ops/docker-healthcheck.mjs');
  });

  it('documents a stop timeout long enough for the default drain', () => {
    const drainS =
      loadWorkerConfig({ FUNCTION_ID: crypto.randomUUID(), FUNCTION_VERSION_ID: crypto.randomUUID() }).drainGraceMs /
      1000;
    const documented = Number(/--stop-timeout (\d+)/.exec(comments)?.[1]);
    expect(documented).toBeGreaterThanOrEqual(drainS + 10);
  });

  it('can run `dev` on its own: nats-server on PATH, the demo container, a gateway reachable from outside', () => {
    expect(all('COPY').map((c) => c.args)).toContain(
      '--from=nats /usr/local/bin/nats-server /usr/local/bin/nats-server',
    );
    expect(all('COPY').map((c) => c.args)).toContain('examples ./examples');
    expect(
      all('ENV')
        .map((e) => e.args)
        .join(' '),
    ).toContain('GATEWAY_HOST=0.0.0.0');
    expect(all('EXPOSE')[0]!.args.split(/\s+/)).toEqual(expect.arrayContaining(['8080', '8010', '8090']));
    expect(comments).toContain('docker run --rm -p 8090:8090 nvcf-sidecar dev --demo');
  });
});

describe('the image health check', { timeout: 20_000 }, () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });
  const listen = async (server: Server) => {
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return (server.address() as AddressInfo).port;
  };
  const check = (env: Record<string, string>) =>
    promisify(execFile)(process.execPath, [repoPath('ops/docker-healthcheck.mjs')], { env: { ...process.env, ...env } })
      .then((out) => ({ code: 0, stderr: out.stderr }))
      .catch((err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }));

  it("passes when the worker's health server answers, the gateway being absent", async () => {
    const port = await listen(createHealthServer({ notReadyReasons: () => ['worker is waiting'] }));
    const result = await check({ HEALTH_PORT: String(port), GATEWAY_PORT: String(await closedPort()) });
    expect(result.code).toBe(0);
  });

  it('passes when only the gateway answers', async () => {
    const port = await listen(createServer((_q, res) => res.writeHead(200).end('{"status":"ok"}')));
    const result = await check({ HEALTH_PORT: String(await closedPort()), GATEWAY_PORT: String(port) });
    expect(result.code).toBe(0);
  });

  it('fails, naming each address and what it answered, when nothing is live', async () => {
    const sick = await listen(createServer((_q, res) => res.writeHead(503).end()));
    const closed = await closedPort();
    const result = await check({ HEALTH_PORT: String(sick), GATEWAY_PORT: String(closed) });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`http://127.0.0.1:${sick}/v1/health/live answered 503`);
    expect(result.stderr).toContain(`http://127.0.0.1:${closed}/v1/health/live: ECONNREFUSED`);
  });
});
