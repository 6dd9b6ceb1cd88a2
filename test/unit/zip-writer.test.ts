import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import yauzl from 'yauzl';
import { ZipWriter } from '../../src/zip/writer.js';
import { readZip } from '../support/zip.js';

async function saved(zip: ZipWriter, build: () => Promise<unknown>): Promise<string> {
  const path = join(await mkdtemp(join(tmpdir(), 'nvcf-zip-')), 'out.zip');
  const written = pipeline(zip.output, createWriteStream(path));
  await build();
  await zip.end();
  await written;
  return path;
}

/** The central directory as a reader sees it: name → declared CRC-32 and sizes. */
async function directory(
  path: string,
): Promise<{ count: number; entries: Map<string, { crc32: number; size: number }> }> {
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.open(path, { lazyEntries: true }, (err, z) => (err ? reject(err) : resolve(z))),
  );
  const entries = new Map<string, { crc32: number; size: number }>();
  await new Promise<void>((resolve, reject) => {
    zip.on('error', reject);
    zip.on('end', resolve);
    zip.on('entry', (entry: yauzl.Entry) => {
      entries.set(entry.fileName, { crc32: entry.crc32, size: entry.uncompressedSize });
      zip.readEntry();
    });
    zip.readEntry();
  });
  zip.close();
  return { count: zip.entryCount, entries };
}

const text = (n: number) => Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(n));

describe('the zip writer', () => {
  it('writes stored and deflated entries, from buffers and streams, that a reader gives back byte for byte with matching checksums', async () => {
    const zip = new ZipWriter();
    const random = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 251));
    const contents = new Map<string, Buffer>([
      ['stored.txt', text(3)],
      ['deflated.txt', text(1000)],
      ['sub/dir/streamed-stored.bin', random],
      ['streamed-deflated.txt', text(20_000)],
      ['empty', Buffer.alloc(0)],
      ['ünïcødé/名前.txt', text(1)],
    ]);
    const path = await saved(zip, async () => {
      await zip.addBuffer('stored.txt', contents.get('stored.txt')!);
      await zip.addBuffer('deflated.txt', contents.get('deflated.txt')!, { compressionLevel: 1 });
      const chunks = (bytes: Buffer) => Readable.from([bytes.subarray(0, 1000), bytes.subarray(1000)]);
      await zip.addStream('sub/dir/streamed-stored.bin', chunks(random), { expectedSize: random.length });
      const big = contents.get('streamed-deflated.txt')!;
      const result = await zip.addStream('streamed-deflated.txt', chunks(big), {
        expectedSize: big.length,
        compressionLevel: 1,
      });
      expect(result.size).toBe(big.length);
      await zip.addStream('empty', Readable.from([]), { expectedSize: 0 });
      await zip.addBuffer('ünïcødé/名前.txt', contents.get('ünïcødé/名前.txt')!);
    });
    // Digests, not bytes: comparing megabytes byte by byte is what would make this test slow.
    const sha = (entries: Map<string, Buffer>) =>
      new Map([...entries].map(([name, bytes]) => [name, createHash('sha256').update(bytes).digest('hex')]));
    expect(sha(await readZip(path))).toEqual(sha(contents));
    const { entries } = await directory(path);
    for (const [name, bytes] of contents)
      expect(entries.get(name)).toEqual({ crc32: crc32(bytes), size: bytes.length });
  });

  it('switches to Zip64 end records past 65,535 entries, and every entry is still there', async () => {
    const zip = new ZipWriter();
    const path = await saved(zip, async () => {
      for (let i = 0; i < 70_000; i++) void zip.addBuffer(`d${Math.floor(i / 1000)}/f${i}.txt`, Buffer.from(String(i)));
    });
    const { count, entries } = await directory(path);
    expect(count).toBe(70_000);
    expect(entries.get('d69/f69999.txt')).toEqual({ crc32: crc32('69999'), size: 5 });
  }, 60_000);

  it('gives a stream expected near 4 GiB Zip64 sizes, which readers accept', async () => {
    const zip = new ZipWriter();
    const path = await saved(zip, () =>
      zip.addStream('huge-to-be.bin', Readable.from([text(10)]), { expectedSize: 0xf000_0000 }),
    );
    expect((await readZip(path)).get('huge-to-be.bin')).toEqual(text(10));
  });

  it('fails the archive when a source breaks, so no later entry lands in a zip with half an entry in it', async () => {
    const zip = new ZipWriter();
    zip.output.resume();
    const outputError = new Promise((resolve) => zip.output.on('error', resolve));
    const broken = new Readable({
      read() {
        this.destroy(new Error('disk went away'));
      },
    });
    await expect(zip.addStream('broken.bin', broken, { expectedSize: 10 })).rejects.toThrow('disk went away');
    await expect(zip.addBuffer('after.txt', text(1))).rejects.toThrow('disk went away');
    expect(await outputError).toMatchObject({ message: 'disk went away' });
  });

  it('fails an entry queued behind a broken one with an error of its own, never with the cause of the other', async () => {
    const zip = new ZipWriter();
    zip.output.resume();
    const cause = new Error('disk went away');
    const broken = new Readable({
      read() {
        this.destroy(cause);
      },
    });
    const first = zip.addStream('broken.bin', broken, { expectedSize: 10 });
    const queued = new Readable({ read() {} });
    const second = zip.addStream('queued.bin', queued, { expectedSize: 10 });
    await expect(first).rejects.toBe(cause);
    const error = await second.catch((err: Error) => err);
    expect(error).not.toBe(cause);
    expect(error).toMatchObject({ message: 'the archive is broken: disk went away', cause });
    // The queued entry's source never got its turn, and is closed all the same.
    expect(queued.destroyed).toBe(true);
  });

  it('holds entries back while nobody reads the output, instead of buffering the whole archive', async () => {
    const zip = new ZipWriter();
    let accepted = 0;
    const block = Buffer.alloc(64 * 1024, 1);
    const adds = Array.from({ length: 100 }, (_, i) => zip.addBuffer(`block-${i}`, block).then(() => accepted++));
    await sleep(100);
    expect(accepted).toBeLessThan(10);
    zip.output.resume();
    await Promise.all(adds);
    expect(accepted).toBe(100);
  });
});
