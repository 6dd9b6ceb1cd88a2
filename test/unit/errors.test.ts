import { describe, expect, it } from 'vitest';
import { SidecarError, problemForContainer, problemForError } from '../../src/shared/errors.js';

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
