import type { IncomingMessage } from 'node:http';
import { UUID_PATTERN } from '../../shared/protocol.js';
import { requestHeader } from './http.js';

/**
 * Calls that name a function themselves, as NVCF's invocation service routes them: by the host
 * (`<functionId>.<domain>` or `<versionId>.<functionId>.<domain>`) or by the `function-id` and
 * optional `function-version-id` headers. Such a call is an invocation on whatever method, path
 * and query it has, and the container receives those unchanged.
 */
export interface RoutedTarget {
  functionId: string;
  versionId?: string;
  via: 'host' | 'header';
}

/** The gateway's own API lives here; a call under it is never routed to a function. */
const API_PREFIX = '/v2/nvcf/';

const UUID_LENGTH = 36;

function uuidAt(text: string, start: number): string | undefined {
  const candidate = text.slice(start, start + UUID_LENGTH);
  if (!UUID_PATTERN.test(candidate)) return undefined;
  const next = text[start + UUID_LENGTH];
  return next === undefined || next === '.' ? candidate.toLowerCase() : undefined;
}

/** `<F>.…` names function F; `<V>.<F>.…` names version V of F. Anything else names nothing. */
export function targetOfHost(host: string | undefined): RoutedTarget | undefined {
  if (!host) return undefined;
  const name = host.replace(/:\d*$/, '');
  const first = uuidAt(name, 0);
  if (!first) return undefined;
  const second = name[UUID_LENGTH] === '.' ? uuidAt(name, UUID_LENGTH + 1) : undefined;
  return second ? { functionId: second, versionId: first, via: 'host' } : { functionId: first, via: 'host' };
}

/** `function-id` must be a UUID; `function-version-id` counts only when it is one too. */
export function targetOfHeaders(
  functionId: string | undefined,
  versionId: string | undefined,
): RoutedTarget | undefined {
  const fid = functionId?.trim();
  if (!fid || !UUID_PATTERN.test(fid)) return undefined;
  const vid = versionId?.trim();
  return {
    functionId: fid.toLowerCase(),
    ...(vid && UUID_PATTERN.test(vid) ? { versionId: vid.toLowerCase() } : {}),
    via: 'header',
  };
}

/** The function a call names, if it names one and is not a call on the gateway's own API. */
export function routedTarget(req: IncomingMessage, path: string): RoutedTarget | undefined {
  if (path.startsWith(API_PREFIX)) return undefined;
  return (
    targetOfHost(requestHeader(req, 'host')) ??
    targetOfHeaders(requestHeader(req, 'function-id'), requestHeader(req, 'function-version-id'))
  );
}

/** The path and query exactly as the client sent them (an absolute-form target loses its origin). */
export function containerPathOf(req: IncomingMessage): string {
  const target = req.url ?? '/';
  if (target.startsWith('/')) return target;
  try {
    const url = new URL(target);
    return `${url.pathname}${url.search}`;
  } catch {
    return '/';
  }
}
