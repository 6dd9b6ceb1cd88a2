import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lutimes, mkdir, mkdtemp, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Janitor } from '../../src/worker/janitor.js';
import { createLogger } from '../../src/shared/log.js';

describe('the janitor', () => {
  it('removes request leftovers older than any request can live, and nothing else', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nvcf-janitor-'));
    const old = new Date(Date.now() - 3 * 3_600_000);
    const stale = join(dir, randomUUID());
    const staleSpool = join(dir, `${randomUUID()}.2.response`);
    const fresh = join(dir, randomUUID());
    const notOurs = join(dir, 'models');
    await mkdir(join(stale, 'sub'), { recursive: true });
    await writeFile(staleSpool, 'x');
    await mkdir(fresh);
    await mkdir(notOurs);
    for (const path of [stale, staleSpool, notOurs]) await utimes(path, old, old);
    const removed = await new Janitor([{ path: dir }], createLogger('silent')).sweep();
    expect(removed).toBe(2);
    expect([stale, staleSpool, fresh, notOurs].map((p) => existsSync(p))).toEqual([false, false, true, true]);
  });

  it('removes anything stale from the response directory, a link without following it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'nvcf-janitor-'));
    const target = await mkdtemp(join(tmpdir(), 'nvcf-janitor-target-'));
    await writeFile(join(target, 'keep'), 'x');
    const old = new Date(Date.now() - 3 * 3_600_000);
    const escaped = join(dir, 'escape-x');
    const fresh = join(dir, 'escape-fresh');
    const planted = join(dir, 'link-out');
    await writeFile(escaped, 'x');
    await writeFile(fresh, 'x');
    await symlink(target, planted);
    await utimes(escaped, old, old);
    await lutimes(planted, old, old);
    const removed = await new Janitor([{ path: dir, everything: true }], createLogger('silent')).sweep();
    expect(removed).toBe(2);
    expect([escaped, fresh, planted].map((p) => existsSync(p))).toEqual([false, true, false]);
    expect(existsSync(join(target, 'keep'))).toBe(true);
  });
});
