import { describe, expect, it } from 'vitest';
import { CancelRegistry } from '../../src/worker/cancels.js';
import { SidecarError } from '../../src/shared/errors.js';

describe('cancel registry', () => {
  it('aborts the running request a cancel names', () => {
    const registry = new CancelRegistry();
    const controller = registry.start('a');
    expect(registry.cancel('a')).toBe(true);
    expect(controller.signal.aborted).toBe(true);
    expect((controller.signal.reason as SidecarError).code).toBe('CANCELLED');
  });

  it('remembers a cancel that arrives before its request starts', () => {
    const registry = new CancelRegistry();
    expect(registry.cancel('early')).toBe(false);
    expect(registry.start('early').signal.aborted).toBe(true);
    expect(registry.start('other').signal.aborted).toBe(false);
  });

  it('forgets finished requests', () => {
    const registry = new CancelRegistry();
    const controller = registry.start('done');
    registry.finish('done');
    registry.cancel('done');
    expect(controller.signal.aborted).toBe(false);
    expect(registry.size).toBe(0);
  });
});
