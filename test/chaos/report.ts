import type { FuzzReport } from './fuzz.js';
import type { PressureRow } from './pressure.js';
import type { ScenarioRow } from './judge.js';
import type { DrainRow } from './scenarios.js';

/** The results as a table for the terminal and as docs/reliability.md. */

const mb = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export function scenarioTable(rows: ScenarioRow[]): string {
  const lines = [
    '| scenario | requests | ok | errored | lost | duplicated | misreported | orphaned | slowest | run time |',
    '|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows)
    lines.push(
      `| ${r.scenario} | ${r.requests} | ${r.ok} | ${r.errored} | ${r.lost} | ${r.duplicated} | ${r.misreported} | ${r.orphaned}${r.orphansExpected && r.orphaned > 0 ? ' (expected)' : ''} | ${s(r.maxLatencyMs)} | ${s(r.elapsedMs)} |`,
    );
  return lines.join('\n');
}

export function pressureTable(rows: PressureRow[]): string {
  if (rows.length === 0) return '';
  const lines = ['| scenario | measured | verdict |', '|---|---|---|'];
  for (const r of rows)
    lines.push(
      `| ${r.scenario} | ${r.figures.map(([label, value]) => `${label}: ${value}`).join('; ')} | ${r.failures.length > 0 ? 'FAILED' : 'held'} |`,
    );
  return lines.join('\n');
}

export function drainTable(row: DrainRow | undefined): string {
  if (!row) return '';
  const lines = ['| worker | exit code | finished | returned | aborted |', '|---|---|---|---|---|'];
  for (const d of row.drains)
    lines.push(`| ${d.worker} | ${d.exitCode} | ${d.finished} | ${d.returned} | ${d.aborted} |`);
  return lines.join('\n');
}

export function fuzzTable(f: FuzzReport | undefined): string {
  if (!f) return '';
  return [
    '| seed | cases | refused by NATS (over max_payload) | addressable | answered | unanswered | wrong answers | crashes | escapes | spoofed headers | worker RSS: first → last batch (peak) | many-files case, run last | worker RSS peak with it → after |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    `| ${f.seed} | ${f.cases} | ${f.refusedByNats} | ${f.addressable} | ${f.answered} | ${f.unanswered.length} | ${f.wrongAnswers.length} | ${f.crashes} | ${f.escapes.length} | ${f.spoofed} | ${mb(f.rssStartBytes)} → ${mb(f.rssEndBytes)} (${mb(f.rssMaxBytes)}) | ${manyFilesCell(f)} |`,
  ].join('\n');
}

function manyFilesCell(f: FuzzReport): string {
  const m = f.manyFiles;
  if (m.count === 0) return 'not run | –';
  return `${m.count} files → ${m.status ?? 'no final'}${m.fileCount !== undefined ? `, ${m.fileCount} shipped` : ''} | ${mb(m.rssPeakBytes ?? 0)} → ${mb(m.rssAfterBytes ?? 0)}`;
}

export function gatewayFuzzTable(f: FuzzReport | undefined): string {
  const g = f?.gateway;
  if (!g) return '';
  return [
    "| calls | answered (polled to a final) | refused with a 4xx problem | wrong answers | gateway 500s | hung | canary leaks | another client's request handed over | gateway alive after |",
    '|---|---|---|---|---|---|---|---|---|',
    `| ${g.cases} | ${g.answered} | ${g.refused} | ${g.wrong.length} | ${g.gatewayErrors.length} | ${g.hung.length} | ${g.leaks.length} | ${g.crossClient.length} | ${g.gatewayAlive ? 'yes' : 'NO'} |`,
  ].join('\n');
}

export function details(rows: ScenarioRow[], pressure: PressureRow[], fuzz: FuzzReport | undefined): string {
  const out: string[] = [];
  for (const r of [...rows, ...pressure]) {
    out.push(`- **${r.scenario}**: ${r.notes.join('; ')}`);
    for (const f of r.failures) out.push(`  - ${f}`);
  }
  if (fuzz) {
    const g = fuzz.gateway;
    const lists = [
      ['crash', fuzz.crashDetails],
      ['unanswered', fuzz.unanswered],
      ['wrong answer', fuzz.wrongAnswers],
      ['escape', fuzz.escapes],
    ] as [string, string[]][];
    if (g)
      lists.push(
        ['gateway wrong answer', g.wrong],
        ['gateway 500', g.gatewayErrors],
        ['gateway hung', g.hung],
        ['gateway leak', g.leaks],
        ['cross-client', g.crossClient],
      );
    for (const [name, list] of lists) {
      for (const item of list.slice(0, 10)) out.push(`- fuzz ${name}: ${item}`);
    }
  }
  return out.join('\n');
}

export function reliabilityDoc(
  rows: ScenarioRow[],
  drain: DrainRow | undefined,
  pressure: PressureRow[],
  fuzz: FuzzReport | undefined,
  meta: { when: string; command: string; size: string },
): string {
  return `# Reliability

What the chaos suite (\`test/chaos/\`) measured the last time it ran in full. Every scenario runs
real processes: nats-server with a file store (or a cluster of three), two worker processes, the
gateway and an echo container, each in its own process. Load goes through the gateway's HTTP API
as an NVCF client sends it: a pexec POST, then status polls, with a unique token in every body
that must come back. After the load, every final in \`NVCF_RS\` is read back and matched to its
caller by that token.

- **lost**: the client never got a final answer (a 404 for its own request, or nothing in 180 s).
- **duplicated**: a client got a body that was not its own, or \`NVCF_RS\` holds two finals for one request.
- **misreported**: the client was answered with a 5xx, yet its request's final in \`NVCF_RS\` is a success.
- **orphaned**: the call was cut before the client learnt its request id, so it can never ask for
  the outcome. After a gateway kill -9 these are expected (no HTTP server answers after its
  death), counted and explained; anywhere else they fail the run, as lost, duplicated and
  misreported do everywhere.
- **errored**: the client got a clear error (a problem with a detail); never silent.

Run: \`${meta.command}\` (${meta.size}), ${meta.when}. Reproduce the fuzz run with the seed below:
\`npm run chaos -- --only fuzz --seed <seed>\`; run chosen scenarios with \`--only\` and any of
\`crash,nats,container,gateway,drain,outage,gateway-kill,cluster,sse,storm,fuzz\`. A reduced run
of every scenario is part of \`npm test\` (\`test/process/chaos.test.ts\`).

## Failure scenarios

${scenarioTable(rows)}

1. **worker crash**: one of the two workers (alternating) gets SIGKILL every few seconds and is started again; \`NATS_ACK_WAIT=2s\`, so its requests are redelivered quickly.
2. **NATS restart**: nats-server stopped for 2 s and restarted on the same port and store, twice.
3. **container crash**: the container gets SIGKILL at 40 % and is back 3 s later. The requests it was running end with a 500 \`urn:inference-connection\` problem (docs/protocol.md); the workers pause intake while it is down and resume after.
4. **gateway away**: the gateway gets SIGTERM at 50 % and comes back on the same port later; results wait in \`NVCF_RS\`.
5. **drain**: SIGTERM to each busy worker in turn (started again after it exits), table below.
6. **NATS outage**: nats-server stopped at 50 % for longer than a client's poll window, with
   every client's request in flight, and restarted on the same port and store. A waiting caller
   must get a 202 with its request id, never a failure for a request whose outcome is unknown.
7. **gateway kill -9**: the gateway gets SIGKILL at 50 % while calls wait for results, a quarter
   of the calls send their body in two halves up to a second apart, and a tenth read a 4 MB
   answer slowly; it is back on the same port 3 s later. A client cut mid-answer polls again.
8. **NATS cluster node kill -9**: three nats-server processes clustered on loopback, every stream
   on three replicas; the node leading \`NVCF_RS\` gets SIGKILL at 1/3, the one leading the work
   queue at 2/3, each restarted 5 s later on its own port and store.

${drainTable(drain)}

## Pressure

${pressureTable(pressure)}

- **slow SSE reader**: one client asks for \`text/event-stream\` and reads 64 KiB a second while the
  container writes its events as fast as it is let. The gateway's RSS is sampled every 0.5 s;
  growth past 64 MiB for one reader fails the run, and so does \`NVCF_RS\` growing more than
  64 MiB beyond what the reader read: the stream is shared by every request, and a worker may
  publish only 8 MiB of a stream ahead of its reader (docs/protocol.md, "Streams").
- **poll storm**: 16 requests kept running while 64 clients poll their status with a 1 s window,
  back to back, for a minute. Consumers on \`NVCF_RS\` are counted before and 3 s after the
  storm: more than one per polling client left over fails the run. nats-server's RSS is read from
  \`/proc\` before and after.

## Hostile input

${fuzzTable(fuzz)}

Cases are published straight to the worker's work queue: garbage bytes, truncated frames, frames
near NATS's 1 MiB \`max_payload\`, mutated invocations (missing, mistyped and unknown fields; asset
ids with \`..\`, \`/\` and NUL; \`file:\` URLs; reply subjects aimed at the work queue or at wildcards),
hostile client headers (CR, LF and NUL in values, bad names, 257 headers, client-sent worker-owned
\`NVCF-*\` headers), and container behaviour: malformed, oversize and deeply nested progress files,
a progress FIFO, a progress symlink to a canary, hostile output names, symlinks to files and
directories outside, a hard link to a canary file, FIFOs, the request directory swapped for a
link out, answers with more than the 256 headers the protocol carries, and one request writing
many tiny files. Every batch also holds a slow request and a second frame that names that
request's reply subject as its own. An addressable case (request id and reply subject readable)
must get exactly one final, its own, and an error final must be a problem with a detail; every
response message must decode with the protocol's own schema, as the gateway reads it. Canary files outside the request
directories (one a valid progress file) must keep their content and mtime and never appear in a
response or a zip; request directories must be gone afterwards; the container checks every request
for a spoofed worker-owned header. Worker memory is read from \`/proc\`: RSS after the first and
after the last batch of cases (flat memory means these stay close), the high-water mark over
them, and, for the many-files case, which runs last and alone, the high-water mark it reached.

### Through the gateway

${gatewayFuzzTable(fuzz)}

Calls to the gateway's HTTP API, as any client could make them, against the same worker and
container: well-formed calls that also send worker-owned \`NVCF-*\` headers (in any case) and
Latin-1 values, with the container doing the hostile things above; bodies over NATS's frame
limit (fetched by the worker from the gateway's storage) and over the gateway's request limit;
unknown and malformed function and version ids (\`..%2F\`, \`%zz\`, NUL, 5,000 characters); bad
\`NVCF-POLL-SECONDS\`; asset references that are malformed, unknown, never uploaded or too many;
status polls for ids that are not the caller's; wrong methods and paths with dot segments;
storage URLs with forged or missing signatures; malformed asset requests. Then, on a second
gateway with one API key per client, a client polls another client's live request by id: it
must get 404, and the owner its own result after. A call that must be
refused must get a 4xx problem with a detail; any other call is polled to its final, which must
be its own echo, a 302 whose archive downloads, or a problem with a detail, never the gateway's
own 500. No answer or archive may carry the canary, and the gateway must be alive at the end.

## What the suite found, and what was done

Every failure below was found by this suite, fixed, and given a regression test that fails
without the fix.

- **A deeply nested progress file crashed the worker** (a JSON parser's recursion, uncaught).
- **Header values beyond Latin-1 wedged the container connection pool**: the HTTP client refuses
  them, and each such request left a pooled connection stuck; after a handful the worker served
  nothing. Such values are refused at the door with a 400, and a pool watchdog replaces a
  stalled pool.
- **A stopping gateway orphaned its callers**, and **status polls answered 500 during a NATS
  outage**: both now answer 202 with \`NVCF-REQID\`, so the caller polls again.
- **Requests were lost after NATS outages longer than 10 s**: the gateway counted the outage
  against unpolled requests and cancelled them; an outage no longer counts.
- **Cancelling one queued request lost others**: a subject-filtered purge on nats-server 2.9 moves
  the shared consumer past earlier waiting messages; the gateway deletes the one message by
  sequence instead.
- **100,000 tiny output files took minutes and about 600 MiB**: the zip library slowed with the
  square of the entry count and kept every entry's stream, and files were shipped one at a time.
  The sidecar now has its own streaming zip writer (Zip64 included) and ships eight files at
  once: the same case takes seconds, with the worker's memory up by tens of MiB
  (docs/performance.md, "Large results of many files").

- **A stopping gateway cut calls still in flight**: a pexec call not yet waiting for its result
  (its body still arriving, or being queued) lost its connection and never learnt its request
  id; 14 to 32 callers per gateway-away run saw "other side closed". The gateway now answers
  every call in flight before closing its connection, says \`Connection: close\`, and answers
  calls arriving on open connections, each with \`Connection: close\`. Closing a kept-alive
  connection that is idle can still cross a call the client has just sent on it (the call is
  reset before the gateway reads it, so it is never queued): 7 of 1,000 calls when idle
  connections were closed after 500 ms, 1 of 1,000 since they are kept up to 2 s, until none is
  idle. Such calls never ran (the judge checks \`NVCF_RS\`); an orphan whose request ran fails the
  run.

**What the suite missed, and sees now.** An independent attack (real processes on loopback, a
bearer key, a hostile container) found failures none of the scenarios above could see. Each now
has a scenario or fuzz check that failed on the code before its fix (figures from reduced runs,
2026-11-29):

- **A NATS outage longer than a poll window misreported successes**: callers waiting through
  a 20 s outage were answered 500 (\`TIMEOUT\`) for requests whose final was a 200. The judge
  reads every final back from \`NVCF_RS\` and counts such answers as *misreported*: 14 of 64
  in the NATS outage scenario.
- **Results were delivered at most once**: the request record was claimed before the body was
  written, so a gateway killed while a client read its answer made that result 404 for ever:
  2 lost of 64 in the gateway kill -9 scenario, which strikes while a client reads a large
  answer slowly.
- **Every status poll left a consumer on \`NVCF_RS\` for five minutes**: 274 consumers after
  274 polls in the poll storm.
- **A slow SSE reader grew the gateway**: 108 → 255 MiB RSS while the container offered 256 MiB
  to a client reading 64 KiB a second. Once the gateway waited for its client, the gateway held,
  but the workers still published the whole stream into \`NVCF_RS\` (514 MiB for 2 MiB read),
  which every request shares; now the gateway reports how far its client has read, and the
  worker stops reading the container 8 MiB beyond that (14 MiB for 3 MiB read).
- **On a three-node cluster**, killing the node leading \`NVCF_RS\` and then the one leading
  the work queue lost 4 of 80 requests (404 "already answered") and refused 25 with a 503 The
  hang of the suite's own reader of \`NVCF_RS\` after such kills (a consumer that stalls) was
  fixed too; and the gateway now creates its key-value and object buckets with
  \`NATS_STREAM_REPLICAS\` like its streams (they were left at one replica).
  And a new call made while the cluster elects a leader for the requests bucket was refused
  with a 503 (637 of 1,000 in one run whose killed node led both streams): JetStream answered
  nobody, so nothing was stored, and the gateway now waits out the election, up to 5 s.
- **Fuzz** (seed 7, 150 cases on the work queue, 40 through the gateway): an answer with 300
  headers was published as a final no reader can decode (the caller waited for ever); a frame
  naming another live request's reply subject answered that caller first; a hard link to a
  canary file went into a result zip; a client polling another client's live request id got
  its result, and the owner then got 404.

**Memory over a longer run.** Seed 99, 30,000 cases on the work queue, no many-files case
(2026-11-25): the worker's RSS was 171 MiB after the first batch and 193 MiB after the last,
sampled every 10 s between 188 and 223 MiB with no upward trend; the high-water mark was
251 MiB. The rise in the first batches is V8 sizing its heap, not a leak.

## Details of the last run

${details(rows, pressure, fuzz)}
`;
}
