import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, rename, symlink, utimes, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Janitor } from '../../src/worker/janitor.js';
import { createLogger } from '../../src/shared/log.js';

const STALE_AFTER_MS = 2 * 3_600_000;

/**
 * The janitor judges age by ctime, which nothing can set back: the sweep is run at a "now" just
 * past the age limit of the entries made first, and the ones made after a pause stay young.
 */
async function agedSweep(janitor: Janitor, lastOld: string): Promise<number> {
  return janitor.sweep((await lstat(lastOld)).ctimeMs + STALE_AFTER_MS + 1);
}

describe('the janitor', () => {
  it('removes request leftovers older than any request can live, and nothing else', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nvcf-janitor-'));
    const stale = join(dir, randomUUID());
    const staleSpool = join(dir, `${randomUUID()}.2.response`);
    const fresh = join(dir, randomUUID());
    const notOurs = join(dir, 'models');
    await mkdir(notOurs);
    await mkdir(join(stale, 'sub'), { recursive: true });
    await writeFile(staleSpool, 'x');
    await sleep(50);
    await mkdir(fresh);
    const removed = await agedSweep(new Janitor([{ path: dir }], createLogger('silent')), staleSpool);
    expect(removed).toBe(2);
    expect([stale, staleSpool, fresh, notOurs].map((p) => existsSync(p))).toEqual([false, false, true, true]);
  });

  it('removes anything stale from the response directory, a link without following it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nvcf-janitor-'));
    const target = await mkdtemp(join(tmpdir(), 'nvcf-janitor-target-'));
    await writeFile(join(target, 'keep'), 'x');
    const escaped = join(dir, 'escape-x');
    const fresh = join(dir, 'escape-fresh');
    const planted = join(dir, 'link-out');
    await writeFile(escaped, 'x');
    await symlink(target, planted);
    await sleep(50);
    await writeFile(fresh, 'x');
    const removed = await agedSweep(new Janitor([{ path: dir, everything: true }], createLogger('silent')), planted);
    expect(removed).toBe(2);
    expect([escaped, fresh, planted].map((p) => existsSync(p))).toEqual([false, true, false]);
    expect(existsSync(join(target, 'keep'))).toBe(true);
  });

  it('keeps a request directory made from an old spare directory: its rename makes it young', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nvcf-janitor-'));
    const spare = join(dir, '.nvcf-spare-0-0');
    const requestDir = join(dir, randomUUID());
    await mkdir(spare);
    const old = new Date(Date.now() - 3 * STALE_AFTER_MS);
    await utimes(spare, old, old);
    await rename(spare, requestDir);
    const removed = await new Janitor([{ path: dir, everything: true }], createLogger('silent')).sweep();
    expect(removed).toBe(0);
    expect(existsSync(requestDir)).toBe(true);
  });
});
