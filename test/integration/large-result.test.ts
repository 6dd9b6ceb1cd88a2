import { mkdtemp, readdir, readlink, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { LargeResult } from '../../src/worker/outputs/large-result.js';
import { useRig } from '../support/rig.js';

async function outputDir(): Promise<{ dir: string; realRoot: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'nvcf-large-'));
  return { dir, realRoot: await realpath(dir) };
}

describe('a large result', () => {
  // A fresh store per test: each counts the uploads it was sent. It answers a failure at once,
  // a success after reading the body.
  const rig = useRig({ storage: true }, { each: true });

  it('ships a file the watcher saw before it existed, once the final sweep finds it written', async () => {
    const storage = rig.storage;
    const { dir, realRoot } = await outputDir();
    const result = new LargeResult({
      requestId: 'r1',
      uploadUrl: storage.url('r1.zip'),
      dir,
      realRoot,
      onShipped: () => undefined,
      signal: new AbortController().signal,
    });
    // Seen by the watcher, then renamed away before its turn came; written again under the same name.
    result.addOutput('again.txt', true);
    await sleep(200);
    await writeFile(join(dir, 'again.txt'), 'real content');
    result.addOutput('again.txt');
    const manifest = await result.finish({ bytes: Buffer.from('body') });
    expect(manifest.files.map((f) => [f.name, f.size])).toEqual([['again.txt', 12]]);
    expect(manifest.skipped).toEqual([]);
  });

  it('closes the spooled body it could not use when an upload attempt fails', async () => {
    const storage = rig.storage;
    storage.failPuts.push(503);
    const { dir, realRoot } = await outputDir();
    await writeFile(join(dir, 'a.txt'), 'x');
    const spool = join(await mkdtemp(join(tmpdir(), 'nvcf-spool-')), 'body.response');
    await writeFile(spool, Buffer.alloc(1024 * 1024, 3));
    const result = new LargeResult({
      requestId: 'r1',
      uploadUrl: storage.url('r1.zip'),
      dir,
      realRoot,
      onShipped: () => undefined,
      signal: new AbortController().signal,
    });
    result.addOutput('a.txt');
    // The first attempt fails while the container still works; the body comes after.
    await sleep(300);
    const manifest = await result.finish({ file: spool });
    expect(manifest.files.map((f) => f.name)).toEqual(['a.txt']);
    expect(storage.puts).toBe(2);
    await sleep(100);
    const open = await Promise.all(
      (await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')),
    );
    // An open descriptor would keep a multi-GB spool on disk after it is removed.
    expect(open.filter((target) => target === spool)).toEqual([]);
  });

  it('stops retrying when the request ends during the wait between attempts', async () => {
    const storage = rig.storage;
    storage.failPuts.push(503, 503, 503, 503);
    const { dir, realRoot } = await outputDir();
    const controller = new AbortController();
    const result = new LargeResult({
      requestId: 'r1',
      uploadUrl: storage.url('r1.zip'),
      dir,
      realRoot,
      onShipped: () => undefined,
      signal: controller.signal,
    });
    const finished = result.finish({ bytes: Buffer.from('body') });
    // The first 503 comes at once; the next attempt waits 100 ms.
    while (storage.puts < 1) await sleep(5);
    controller.abort(new Error('the request was cancelled'));
    await expect(finished).rejects.toThrow('the request was cancelled');
    await sleep(300);
    expect(storage.puts).toBe(1);
  });

  it('says which shipped files changed or went away before it sends the zip again without them', async () => {
    const storage = rig.storage;
    const { dir, realRoot } = await outputDir();
    await writeFile(join(dir, 'scratch.tmp'), 'half-done');
    await writeFile(join(dir, 'kept.txt'), 'final');
    const changed: string[][] = [];
    let shipped = 0;
    const result = new LargeResult({
      requestId: 'r1',
      uploadUrl: storage.url('r1.zip'),
      dir,
      realRoot,
      onShipped: () => void shipped++,
      onChanged: (names) => changed.push(names),
      signal: new AbortController().signal,
    });
    result.addOutput('scratch.tmp');
    result.addOutput('kept.txt');
    while (shipped < 2) await sleep(10);
    // A temporary file under a final name, gone by the time the response arrives.
    await rm(join(dir, 'scratch.tmp'));
    const manifest = await result.finish({ bytes: Buffer.from('body') });
    expect(changed).toEqual([['scratch.tmp']]);
    expect(manifest.files.map((f) => f.name)).toEqual(['kept.txt']);
    expect(storage.puts).toBe(2);
  });
});
