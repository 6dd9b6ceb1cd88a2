import { execFile } from 'node:child_process';

let cached: Promise<string[]> | undefined;

/**
 * The GPU models this machine has, as `nvidia-smi` names them; none without the NVIDIA driver.
 * Deployments run whatever `gpu` they name: the harness runs instances on this machine as it is.
 */
export function supportedGpus(): Promise<string[]> {
  cached ??= new Promise((resolve) =>
    execFile('nvidia-smi', ['--query-gpu=name', '--format=csv,noheader'], { timeout: 5_000 }, (err, stdout) =>
      resolve(
        err
          ? []
          : [
              ...new Set(
                stdout
                  .split('\n')
                  .map((l) => l.trim())
                  .filter(Boolean),
              ),
            ],
      ),
    ),
  );
  return cached;
}
