import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadWorkerConfig } from '../../src/worker/config.js';
import { loadGatewayConfig } from '../../src/gateway/config.js';

const read = (path: string) => readFileSync(new URL(`../../examples/${path}`, import.meta.url), 'utf8');
const file = (path: string) => new URL(`../../examples/${path}`, import.meta.url).pathname;

/** `KEY: value` lines of one compose service's environment block. */
function composeEnv(text: string, service: string): Record<string, string> {
  const block = new RegExp(`\\n  ${service}:\\n([\\s\\S]*?)(?=\\n  \\S|\\nvolumes:)`).exec(text)?.[1] ?? '';
  const env = /\n {4}environment:\n((?: {6}.*\n?)+)/.exec(`\n${block}`)?.[1] ?? '';
  return Object.fromEntries([...env.matchAll(/^ {6}([A-Z_]+): "?([^"\n]*)"?$/gm)].map((m) => [m[1]!, m[2]!]));
}

describe('the examples that cannot run here still hold together', () => {
  it('the Python examples parse', () => {
    // One interpreter for all of them: each start costs a second on a loaded machine.
    const paths = ['02-progress/server.py', '04-pytriton/server.py', '07-openai/client.py'].map(file);
    execFileSync('python3', ['-c', 'import ast, sys\nfor p in sys.argv[1:]: ast.parse(open(p).read())', ...paths]);
  });

  it('the echo container and the Triton run script parse', () => {
    execFileSync(process.execPath, ['--check', file('01-echo/server.mjs')]);
    execFileSync(process.execPath, ['--check', file('07-openai/client.mjs')]);
    execFileSync('sh', ['-n', file('03-triton/run.sh')]);
    expect(read('03-triton/run.sh')).toContain("--http-header-forward-pattern 'NVCF-.*'");
    expect(read('04-pytriton/server.py')).toContain('http_header_forward_pattern="NVCF-.*"');
  });

  it("the pod shares /var/inf through an emptyDir, probes the sidecar's health endpoints, and configures a valid worker", () => {
    const pod = read('05-kubernetes/pod.yaml');
    expect(pod).toContain('emptyDir: {}');
    expect(pod.match(/mountPath: \/var\/inf$/gm)).toHaveLength(2);
    expect(pod).toContain('path: /v1/health/live');
    expect(pod).toContain('path: /v1/health/ready');
    const sidecar = pod.slice(pod.indexOf('- name: nvcf-sidecar'));
    const env = Object.fromEntries(
      [...sidecar.matchAll(/- name: ([A-Z_]+)\n\s+value: "([^"]*)"/g)].map((m) => [m[1]!, m[2]!]),
    );
    expect(Object.keys(env)).toContain('FUNCTION_ID');
    expect(() => loadWorkerConfig(env)).not.toThrow();
  });

  it('the compose file configures a valid worker and gateway', () => {
    const compose = read('06-docker-compose/docker-compose.yml');
    const worker = composeEnv(compose, 'sidecar');
    const gateway = composeEnv(compose, 'gateway');
    expect(worker.FUNCTION_ID).toBeDefined();
    expect(gateway.GATEWAY_PUBLIC_URL).toBe('http://gateway:8090');
    expect(() => loadWorkerConfig(worker)).not.toThrow();
    expect(loadGatewayConfig(gateway).port).toBe(8090);
  });
});
