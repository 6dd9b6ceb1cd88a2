import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../shared/env.js';

/** examples/ sits next to src/ (tsx) and next to dist/ (built). */
function exampleFile(relative: string): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); dir !== dirname(dir); dir = dirname(dir)) {
    const candidate = join(dir, 'examples', relative);
    if (existsSync(candidate)) return candidate;
  }
  throw new ConfigError(`cannot find examples/${relative} next to the sidecar`);
}

/**
 * The bundled echo example as a harness-only `localCommand`: the gateway runs it with
 * INFERENCE_PORT set to a free port, and the example listens on PORT. Node and the script are
 * arguments of the shell, not words of its command, so no path needs quoting.
 */
export function demoCommand(): string[] {
  return ['sh', '-c', 'PORT="$INFERENCE_PORT" exec "$0" "$1"', process.execPath, exampleFile('01-echo/server.mjs')];
}
