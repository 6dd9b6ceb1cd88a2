import { describe, expect, it } from 'vitest';
import { invocationFor } from '../support/env.js';
import { startRig } from '../support/rig.js';

const USER = 'sidecar';
const PASSWORD = 'secret-pw-4f7d2a9c';

describe("the worker's NATS credentials", () => {
  it('appear in no message of any stream or bucket after a request ran', async () => {
    // A nats-server that lets in only USER; the rig's client logs in as it too.
    const rig = await startRig({
      nats: { auth: { user: USER, password: PASSWORD } },
      worker: { env: { NATS_USER: USER, NATS_PASSWORD: PASSWORD } },
    });
    try {
      const result = await rig.client.result(
        await rig.client.invoke(invocationFor(rig.worker.env), Buffer.from('hello')),
      );
      expect(result.status).toBe(200);

      const jsm = await rig.nc.jetstreamManager();
      const streams = await jsm.streams.list().next();
      expect(streams.map((s) => s.config.name)).toContain('KV_nvcf_workers');
      let scanned = 0;
      for (const info of streams) {
        const { first_seq, last_seq } = (await jsm.streams.info(info.config.name)).state;
        for (let seq = first_seq; seq > 0 && seq <= last_seq; seq++) {
          const message = await jsm.streams.getMessage(info.config.name, { seq }).catch(() => undefined);
          if (!message) continue;
          scanned++;
          const headers = message.header
            ? message.header.keys().map((key) => `${key}: ${message.header.values(key).join(',')}`)
            : [];
          const text = [Buffer.from(message.data).toString('latin1'), message.subject, ...headers].join('\n');
          expect(text, `${info.config.name} #${seq}`).not.toContain(PASSWORD);
          expect(text, `${info.config.name} #${seq}`).not.toContain(`"user":"${USER}"`);
        }
      }
      expect(scanned).toBeGreaterThan(0);
    } finally {
      await rig.dispose();
    }
  });
});
