import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { HttpProblem } from '../../src/gateway/front/http.js';
import { SidecarError, problemForContainer, problemForError } from '../../src/shared/errors.js';

const src = fileURLToPath(new URL('../../src', import.meta.url));
const sources = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? sources(join(dir, entry.name)) : entry.name.endsWith('.ts') ? [join(dir, entry.name)] : [],
  );

describe('problem details', () => {
  it('take the detail from a container error object that is not a string', () => {
    expect(problemForContainer(400, Buffer.from('{"error":{"field":"prompt"}}')).detail).toBe('{"field":"prompt"}');
  });

  it('fall back to "Inference error" for empty, non-JSON or error-less bodies', () => {
    for (const body of ['', '<html>', '{"message":"x"}', '{"error":""}', 'null']) {
      expect(problemForContainer(500, Buffer.from(body)).detail).toBe('Inference error');
    }
  });

  it('name a status Node does not know', () => {
    expect(problemForContainer(599, Buffer.alloc(0))).toMatchObject({
      type: 'urn:inference-service:problem-details:error',
      title: 'Error',
      status: 599,
    });
  });

  it('keep the contract wording and add the specific reason', () => {
    const problem = problemForError(new SidecarError('ASSET_DOWNLOAD_FAILED', 'asset 1 answered 404'), 'req-1');
    expect(problem).toEqual({
      type: 'urn:nvcf-worker-service:problem-details:internal-server-error',
      title: 'Internal Server Error',
      status: 500,
      detail: 'Internal error while downloading assets: asset 1 answered 404',
      requestId: 'req-1',
    });
  });

  it('say whether the work should be retried', () => {
    expect(new SidecarError('DRAINING', 'x').disposition).toBe('retry');
    expect(new SidecarError('INFERENCE_CONNECTION', 'x').disposition).toBe('answer');
  });
});

describe('the error family', () => {
  it('has every error class of the project in it, so a catcher can ask any of them whether to retry', () => {
    const outside = sources(src).flatMap((file) =>
      [...readFileSync(file, 'utf8').matchAll(/class (\w+) extends (?:Error|TypeError|RangeError)\b/g)]
        .filter((m) => m[1] !== 'NvcfError')
        .map((m) => `${relative(src, file)}: ${m[1]}`),
    );
    expect(outside).toEqual([]);
  });

  it('is what the project throws: no plain Error is made anywhere in its TypeScript', () => {
    const plain = sources(src).flatMap((file) =>
      readFileSync(file, 'utf8')
        .split('\n')
        .flatMap((line, i) =>
          /new (?:Error|TypeError|RangeError)\(/.test(line) ? [`${relative(src, file)}:${i + 1}`] : [],
        ),
    );
    expect(plain).toEqual([]);
  });

  it('tells a gateway client to call again after a full queue or an outage, not after a refusal', () => {
    expect([429, 503, 504].map((status) => new HttpProblem(status, 'x').retry)).toEqual(['retry', 'retry', 'retry']);
    expect([400, 401, 404, 413].map((status) => new HttpProblem(status, 'x').retry)).toEqual([
      'give-up',
      'give-up',
      'give-up',
      'give-up',
    ]);
  });
});
