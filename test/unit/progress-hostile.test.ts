import { describe, expect, it } from 'vitest';
import { readProgress } from '../../src/worker/outputs/progress-file.js';

const requestId = '11111111-2222-4333-8444-555555555555';

describe('a hostile progress file', () => {
  it('nested deeper than JSON.stringify can go is refused with a reason instead of throwing', () => {
    const depth = 100_000;
    const text = `{"progress": 30, "partialResponse": ${'['.repeat(depth)}${']'.repeat(depth)}}`;
    const reading = readProgress(text, requestId);
    expect(reading).toMatchObject({ ok: false, maybeHalfWritten: false });
    expect(reading.ok === false && reading.reason).toMatch(/partialResponse cannot be re-encoded/);
  });
});
