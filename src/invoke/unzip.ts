import { createWriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, isAbsolute, join, normalize, sep } from 'node:path';
import { pipeline } from 'node:stream/promises';
import yauzl from 'yauzl';
import { NvcfError } from '../shared/errors.js';

/** A result zip with an entry that would land outside the folder it is unpacked into. */
class UnsafeArchive extends NvcfError {
  override name = 'UnsafeArchive';
  readonly retry = 'give-up';
}

/**
 * Unpacks a large-result zip into `outDir` and lists what it wrote. An entry that would land
 * outside `outDir` (an absolute name, or one climbing with "..") stops the whole extraction:
 * the zip came over the network and its names are not to be trusted.
 */
export async function extractZip(zipPath: string, outDir: string): Promise<string[]> {
  const zip = await new Promise<yauzl.ZipFile>((resolve, reject) =>
    yauzl.open(zipPath, { lazyEntries: true, decodeStrings: true }, (err, file) => (err ? reject(err) : resolve(file))),
  );
  const written: string[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      zip.on('error', reject);
      zip.on('end', resolve);
      zip.on('entry', (entry: yauzl.Entry) => {
        void writeEntry(zip, entry, outDir).then((name) => {
          if (name) written.push(name);
          zip.readEntry();
        }, reject);
      });
      zip.readEntry();
    });
  } finally {
    zip.close();
  }
  return written;
}

async function writeEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, outDir: string): Promise<string | undefined> {
  const name = normalize(entry.fileName);
  if (isAbsolute(name) || name === '..' || name.startsWith(`..${sep}`))
    throw new UnsafeArchive(`the zip holds an entry outside its folder: "${entry.fileName}"`);
  const target = join(outDir, name);
  if (entry.fileName.endsWith('/')) {
    await mkdir(target, { recursive: true });
    return undefined;
  }
  await mkdir(dirname(target), { recursive: true });
  const stream = await new Promise<NodeJS.ReadableStream>((resolve, reject) =>
    zip.openReadStream(entry, (err, s) => (err ? reject(err) : resolve(s))),
  );
  await pipeline(stream, createWriteStream(target));
  return name;
}
