import type { Random } from './random.js';

/**
 * What the fuzz container is asked to do for one request, carried in the request's body: write
 * a hostile progress file or hostile output names, plant links and FIFOs, or just echo.
 */

/** What the fuzz container does for a request, carried in its body. */
export type ContainerAct =
  | { act: 'echo' }
  | { act: 'progress'; content: string }
  | {
      act:
        | 'progress-fifo'
        | 'progress-symlink'
        | 'progress-dir'
        | 'output-fifo'
        | 'output-symlink-file'
        | 'output-symlink-dir'
        | 'output-hardlink'
        | 'many-headers'
        | 'replace-dir';
    }
  | { act: 'sleep'; ms: number }
  | { act: 'outputs'; names: string[] }
  | { act: 'many-files'; count: number };

export const SPOOF = 'SPOOFED';

const progressContents = (rng: Random, otherId: string): string =>
  rng.pick([
    '{"progress": 50, "partialResponse": {"ok": true}}',
    '{"progress": ',
    'not json at all',
    '{"progress": -1}',
    '{"progress": 101}',
    '{"progress": 1.5}',
    '{"progress": "50"}',
    'null',
    '[]',
    '{}',
    `{"progress": 10, "id": "${otherId}"}`,
    `{"progress": 20, "partialResponse": "${'p'.repeat(300_000)}"}`,
    `{"progress": 30, "partialResponse": ${'['.repeat(100_000)}${']'.repeat(100_000)}}`,
    `{"progress": 40, "partialResponse": ${'{"a":'.repeat(20_000)}1${'}'.repeat(20_000)}}`,
    'x'.repeat(3 * 1024 * 1024),
    '\u0000\u0001\u0002binary\uffff',
    '{"progress": 60, "partialResponse": {"__proto__": {"polluted": 1}}}',
  ]);

const outputNames = [
  '..x',
  '...',
  'a\\b',
  'line\nbreak',
  'tab\tx',
  '\u0001ctl',
  'é漢字.txt',
  'x'.repeat(255),
  ' lead',
  '-dash',
  '.hidden',
  'left.partial',
  `${'d/'.repeat(40)}deep.txt`,
  'sub/../up.txt',
  'progress.json',
  'a:b',
  '\u007f',
];

export function containerAct(rng: Random): ContainerAct {
  const roll = rng.int(0, 11);
  if (roll <= 3) return { act: 'progress', content: progressContents(rng, rng.uuid()) };
  if (roll <= 5) return { act: 'outputs', names: Array.from({ length: rng.int(1, 4) }, () => rng.pick(outputNames)) };
  return {
    act: rng.pick([
      'progress-fifo',
      'progress-symlink',
      'progress-dir',
      'output-fifo',
      'output-symlink-file',
      'output-symlink-dir',
      'output-hardlink',
      'many-headers',
      'replace-dir',
      'echo',
    ] as const),
  };
}
