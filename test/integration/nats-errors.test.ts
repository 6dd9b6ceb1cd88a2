import { connect, DiscardPolicy, RetentionPolicy } from 'nats';
import { describe, expect, it } from 'vitest';
import { classifyNatsError, isNoResponders } from '../../src/shared/nats-errors.js';
import { useRig } from '../support/rig.js';

const failure = (call: () => Promise<unknown>) =>
  call().then(
    () => {
      throw new Error('expected the call to fail');
    },
    (err: unknown) => err,
  );

describe('the NATS error classifier, on errors from a real server', () => {
  const rig = useRig({ nats: true });

  it('knows a missing stream, consumer and message by their JetStream codes', async () => {
    const jsm = await rig.nc.jetstreamManager();
    await jsm.streams.add({ name: 'EMPTY', subjects: ['empty.>'] });
    expect(classifyNatsError(await failure(() => jsm.streams.info('NONE')))).toEqual({
      kind: 'not-found',
      code: '10059',
    });
    expect(classifyNatsError(await failure(() => jsm.consumers.info('EMPTY', 'none')))).toEqual({
      kind: 'not-found',
      code: '10014',
    });
    expect(
      classifyNatsError(await failure(() => jsm.streams.getMessage('EMPTY', { last_by_subj: 'empty.x' }))),
    ).toEqual({ kind: 'not-found', code: '10037' });
  });

  it('knows a stream that exists with another configuration', async () => {
    const jsm = await rig.nc.jetstreamManager();
    await jsm.streams.add({ name: 'TAKEN', subjects: ['taken.>'], max_msgs: 1 });
    const err = await failure(() => jsm.streams.add({ name: 'TAKEN', subjects: ['taken.>'], max_msgs: 2 }));
    expect(classifyNatsError(err).kind).toBe('exists');
  });

  it('knows a publish refused by a full work queue (code 10077), though nats.js calls it 503', async () => {
    const jsm = await rig.nc.jetstreamManager();
    await jsm.streams.add({
      name: 'FULL',
      subjects: ['full.>'],
      retention: RetentionPolicy.Workqueue,
      discard: DiscardPolicy.New,
      max_msgs: 1,
    });
    const js = rig.nc.jetstream();
    await js.publish('full.a');
    const err = await failure(() => js.publish('full.b'));
    expect((err as { code: string }).code).toBe('503');
    expect(classifyNatsError(err)).toEqual({ kind: 'full', code: '10077' });
    expect(isNoResponders(err)).toBe(false);
  });

  it('tells a publish nothing answered (no stream has a leader for it) from a refusal, so only the first is asked again', async () => {
    const err = await failure(() => rig.nc.jetstream().publish('nobody.listens'));
    expect(isNoResponders(err)).toBe(true);
    expect(classifyNatsError(err).kind).toBe('unreachable');
  });

  it('calls a connection that is gone unreachable, and anything else other', async () => {
    const other = await connect({ servers: rig.natsUrl });
    await other.close();
    const err = await failure(() => other.jetstreamManager().then((jsm) => jsm.streams.info('X')));
    expect(classifyNatsError(err).kind).toBe('unreachable');
    expect(classifyNatsError(new Error('stream not found')).kind).toBe('other');
  });
});
