import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { useRig } from '../support/rig.js';

const version = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;

// Nothing but the commands under test; the rig kills any that a failed test leaves running.
const rig = useRig();

async function run(args: string[], env: Record<string, string> = {}) {
  const cli = rig.spawnSidecar(args, env);
  const { code } = await cli.exit;
  return { code, out: cli.stdout(), err: cli.stderr() };
}

describe('one command-line convention for every command', () => {
  it('answers --help on every command and `help <command>`, with exit 0', async () => {
    const results = await Promise.all([
      run(['help']),
      run(['worker', '--help']),
      run(['gateway', '-h']),
      run(['dev', '--help']),
      run(['invoke', '--help']),
      run(['help', 'invoke']),
    ]);
    for (const r of results) {
      expect(r.code).toBe(0);
      expect(r.out).toMatch(/^usage: nvcf-sidecar/);
    }
    expect(results[0].out).toContain('exit codes: 0 done, 1 failed while running, 2 bad arguments or configuration');
    expect(results[5].out).toBe(results[4].out);
    // Six processes start at once; on a loaded machine that takes longer than one.
  }, 180_000);

  it('prints the package version for --version, at the top and on every command', async () => {
    const results = await Promise.all(
      [[], ['worker'], ['gateway'], ['dev'], ['invoke']].map((command) => run([...command, '--version'])),
    );
    for (const r of results) expect(r).toMatchObject({ code: 0, out: `${version}\n` });
  }, 180_000);

  it('exits 2 for a bad configuration in every command, naming what is wrong', async () => {
    const [worker, gateway, dev, invoke, unknown, devGateway] = await Promise.all([
      run(['worker'], { FUNCTION_ID: 'not-a-uuid' }),
      run(['gateway', '--port=not-a-port']),
      run(['dev', '--inference-url', 'ftp://x']),
      run(['invoke', 'fid', '--poll-seconds=0']),
      run(['dev', '--bogus']),
      run(['dev', '--demo', '--port=not-a-port']),
    ]);
    expect(worker.code).toBe(2);
    expect(worker.err).toContain('FUNCTION_ID is "not-a-uuid"');
    expect(gateway.code).toBe(2);
    expect(gateway.err).toContain('GATEWAY_PORT is "not-a-port"');
    expect(dev.code).toBe(2);
    expect(dev.err).toContain('--inference-url must be an http:// URL');
    expect(invoke.code).toBe(2);
    expect(invoke.err).toContain('--poll-seconds must be a whole number from 1 to 3600, not "0"');
    expect(unknown.code).toBe(2);
    expect(unknown.err).toContain('unknown option "--bogus"');
    // Refused before anything starts: no nats-server was launched for it.
    expect(devGateway.code).toBe(2);
    expect(devGateway.err).toContain('GATEWAY_PORT is "not-a-port"');
    expect(devGateway.out).not.toContain('nats-server');
  }, 180_000);

  it('takes --flag=value and --flag value alike', async () => {
    const [spaced, joined] = await Promise.all([
      run(['invoke', 'fid', '--poll-seconds', 'x']),
      run(['invoke', 'fid', '--poll-seconds=x']),
    ]);
    expect(spaced.code).toBe(2);
    expect(joined.err).toBe(spaced.err);
    expect(joined.err).toContain('not "x"');
  });
});
