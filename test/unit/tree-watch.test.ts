import { mkdir, mkdtemp, rename, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { TreeWatcher } from '../../src/worker/outputs/tree-watch.js';

describe('the tree watcher', () => {
  it('reports files made, renamed into place and linked, in directories made after it started, until closed', async () => {
    const root = await mkdtemp(join(tmpdir(), 'nvcf-tree-'));
    const seen = new Set<string>();
    const watcher = new TreeWatcher((path) => seen.add(path.slice(root.length + 1)));
    watcher.watchDir(root);
    await writeFile(join(root, 'progress'), '{}');
    await writeFile(join(root, 'a.partial'), 'x');
    await rename(join(root, 'a.partial'), join(root, 'a.png'));
    await mkdir(join(root, 'sub', 'deeper'), { recursive: true });
    await writeFile(join(root, 'sub', 'deeper', 'b.txt'), 'y');
    await symlink('/etc/passwd', join(root, 'link'));
    await expect
      .poll(() => [...seen].sort())
      .toEqual(expect.arrayContaining(['a.png', 'link', 'progress', 'sub/deeper/b.txt']));
    watcher.close();
    await writeFile(join(root, 'after-close'), 'z');
    await sleep(100);
    expect(seen.has('after-close')).toBe(false);
  });
});
