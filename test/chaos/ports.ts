import { readFile } from 'node:fs/promises';

/** A port free on 127.0.0.1 right now, for a process that must keep its port across restarts. */
export { closedPort as freePort } from '../support/http.js';

/** Resident memory of a process now and at its highest since it started, in bytes (Linux /proc). */
export async function memoryOf(pid: number | undefined): Promise<{ rss: number; peak: number }> {
  const status = pid === undefined ? '' : await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const kB = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0) * 1024;
  return { rss: kB('VmRSS'), peak: kB('VmHWM') };
}
