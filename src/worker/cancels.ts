import { EventEmitter } from 'node:events';
import { SidecarError } from '../shared/errors.js';

/** Cancels that arrive before their request is picked up are remembered this long. */
const REMEMBER_MS = 10 * 60_000;
const REMEMBER_MAX = 10_000;

/**
 * A request's abort handle. It also tells undici, through a plain emitter that undici accepts in
 * place of an AbortSignal: on Node 20 undici's addEventListener and removeEventListener on a
 * signal cost about 6 µs per request, an emitter's on and off a few hundredths of that.
 */
export class RequestAbort extends AbortController {
  readonly forUndici: EventEmitter & { aborted: boolean; reason: unknown } = Object.assign(new EventEmitter(), {
    aborted: false,
    reason: undefined,
  });

  override abort(reason?: unknown): void {
    if (this.signal.aborted) return;
    super.abort(reason);
    this.forUndici.aborted = true;
    this.forUndici.reason = this.signal.reason;
    this.forUndici.emit('abort');
  }
}

/**
 * The abort handles of the requests running here, keyed by request id, so a message on
 * `nvcf.cancel.<functionVersionId>` can stop the container call it names. A cancel for a
 * request not running here is remembered for a while: if that request is delivered later, it
 * is answered as cancelled instead of being run.
 */
export class CancelRegistry {
  private readonly running = new Map<string, RequestAbort>();
  private readonly early = new Map<string, number>();

  start(requestId: string): RequestAbort {
    const controller = new RequestAbort();
    this.running.set(requestId, controller);
    if (this.early.delete(requestId)) {
      controller.abort(new SidecarError('CANCELLED', 'a cancel for this request arrived before it started'));
    }
    return controller;
  }

  finish(requestId: string): void {
    this.running.delete(requestId);
  }

  /** Returns true when the request was running here and has been told to stop. */
  cancel(requestId: string): boolean {
    const controller = this.running.get(requestId);
    if (controller) {
      controller.abort(new SidecarError('CANCELLED', 'the caller cancelled the request'));
      return true;
    }
    this.remember(requestId);
    return false;
  }

  abortAll(reason: SidecarError): number {
    for (const controller of this.running.values()) controller.abort(reason);
    return this.running.size;
  }

  get size(): number {
    return this.running.size;
  }

  private remember(requestId: string): void {
    const now = Date.now();
    for (const [id, at] of this.early) {
      if (this.early.size < REMEMBER_MAX && now - at < REMEMBER_MS) break;
      this.early.delete(id);
    }
    this.early.set(requestId, now);
  }
}
