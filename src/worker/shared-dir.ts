import { chmod, mkdir } from 'node:fs/promises';

/**
 * Directories the worker shares with the inference container (the base directories and each
 * request's asset and output directory) are mode 0777: the container may run as another user.
 * mkdir's mode is filtered by the process umask, so each such directory used to need a chmod
 * after its mkdir, a second file-system call per directory on every request. A process that runs
 * only the worker clears its umask once at start (`clearUmask`) and every file it creates names
 * its own mode; a worker sharing its process with other code (the dev command, the tests) leaves
 * the umask alone and keeps the chmod.
 */
let umaskCleared = false;

/** Clears the umask for the whole process; only for a process that runs nothing but the worker. */
export function clearUmask(): void {
  try {
    process.umask(0);
    umaskCleared = true;
  } catch {
    // Worker threads may not change it: each directory keeps its chmod.
  }
}

/**
 * Creates a shared directory inside an existing one: one mkdir when the umask is clear. A
 * directory already there (left by a run that crashed), or a missing parent, takes the long way
 * (recursive mkdir and chmod), exactly as every directory did before.
 */
export async function makeSharedDir(path: string): Promise<void> {
  try {
    await mkdir(path, { mode: 0o777 });
    if (umaskCleared) return;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST' && code !== 'ENOENT') throw err;
    await mkdir(path, { recursive: true, mode: 0o777 });
  }
  await chmod(path, 0o777);
}
