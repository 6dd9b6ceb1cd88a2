#!/usr/bin/env node
// The image's HEALTHCHECK, for whichever command the container runs: the worker answers
// liveness on HEALTH_PORT (8080), the gateway and `dev` on GATEWAY_PORT (8090). Healthy when
// one of them answers 200; HEALTHCHECK_URL names another endpoint (say, `dev --port 9000`).
// Liveness, not readiness: a worker waiting for its container, or draining, is not broken.
const urls = process.env.HEALTHCHECK_URL
  ? [process.env.HEALTHCHECK_URL]
  : [process.env.HEALTH_PORT || '8080', process.env.GATEWAY_PORT || '8090'].map(
      (port) => `http://127.0.0.1:${port}/v1/health/live`,
    );

const failures = [];
for (const url of urls) {
  try {
    const answer = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    if (answer.status === 200) process.exit(0);
    failures.push(`${url} answered ${answer.status}`);
  } catch (err) {
    // fetch hides the socket's error code (ECONNREFUSED, ...) in its cause.
    const { cause, message } = /** @type {Error & { cause?: { code?: string } }} */ (err);
    failures.push(`${url}: ${cause?.code ?? message}`);
  }
}
// Docker keeps this output with the health state (docker inspect).
console.error(`unhealthy: ${failures.join('; ')}`);
process.exit(1);
