import { readFinals, duplicatedFinals, misreported, type LoadResult } from './load.js';

/**
 * What a scenario's clients saw, judged against what NATS holds afterwards: every final in
 * NVCF_RS is read back, so a caller told "failed" whose request succeeded is caught
 * (misreported), as is one cut off before it learnt its request id (orphaned).
 */

export interface ScenarioRow {
  scenario: string;
  requests: number;
  ok: number;
  errored: number;
  lost: number;
  duplicated: number;
  /** Answered 5xx, though the request's final in NVCF_RS is a success. */
  misreported: number;
  /** Cut without a request id: the caller can never learn the outcome. */
  orphaned: number;
  /** Of the orphans, those whose request was queued and ran: a caller that lost a live request. */
  orphanedRan?: number;
  /** Orphans no server could have prevented (the gateway was killed): counted, explained, not failed. */
  orphansExpected?: boolean;
  /** The scenario's own harness failed before it could judge anything. */
  harnessError?: boolean;
  maxLatencyMs: number;
  elapsedMs: number;
  notes: string[];
  /** Up to five examples of each failure, for the log. */
  failures: string[];
}

export async function judgeLoad(
  scenario: string,
  natsUrl: string,
  load: LoadResult,
  notes: string[],
): Promise<ScenarioRow> {
  const finals = await readFinals(natsUrl);
  const wrong = load.counts.wrong;
  const kinds = new Map<string, { count: number; example: string }>();
  const told = misreported(load.requests, finals);
  for (const r of told) r.detail = `MISREPORTED (its final is ${finals.statusByToken.get(r.token)}): ${r.detail}`;
  for (const r of load.requests.filter((r) => r.outcome !== 'ok')) {
    const key = `${r.outcome ?? 'lost'} ${r.status ?? ''} ${(/"detail":"([^"]{0,80})/.exec(r.detail ?? '')?.[1] ?? r.detail ?? '').replace(/[0-9a-f-]{36}/g, '<id>').slice(0, 100)}`;
    const kind = kinds.get(key) ?? { count: 0, example: r.requestId ?? '(no id)' };
    kind.count++;
    kinds.set(key, kind);
  }
  const orphans = load.requests.filter((r) => r.outcome === 'orphaned');
  const ran = orphans.filter((r) => finals.statusByToken.has(r.token)).length;
  if (orphans.length > 0)
    notes.push(
      `${orphans.length} calls cut before they learnt a request id; ${ran} of them had been queued and ran (a final in NVCF_RS), ${orphans.length - ran} never ran`,
    );
  const cut = load.requests.filter((r) => r.cutMidBody).length;
  if (cut > 0) notes.push(`${cut} answers cut mid-body; those clients polled again`);
  return {
    scenario,
    requests: load.requests.length,
    ok: load.counts.ok,
    errored: load.counts.errored,
    lost: load.counts.lost,
    duplicated: wrong + duplicatedFinals(finals.perRequest),
    misreported: told.length,
    orphaned: orphans.length,
    orphanedRan: ran,
    maxLatencyMs: load.maxLatencyMs,
    elapsedMs: load.elapsedMs,
    notes,
    failures: [...kinds].map(([key, k]) => `${k.count} × ${key} (e.g. ${k.example})`),
  };
}

/** A scenario whose harness threw: nothing measured, and the run fails. */
export function crashedRow(scenario: string, err: Error): ScenarioRow {
  return {
    scenario: `${scenario} (harness error)`,
    requests: 0,
    ok: 0,
    errored: 0,
    lost: 0,
    duplicated: 0,
    misreported: 0,
    orphaned: 0,
    maxLatencyMs: 0,
    elapsedMs: 0,
    notes: [`the scenario did not finish: ${err.message}`],
    failures: [String(err.stack ?? err.message).slice(0, 500)],
    harnessError: true,
  };
}

/** A row fails the run on anything lost, duplicated, misreported, or orphaned where a server could answer. */
export function rowFailed(r: ScenarioRow): boolean {
  return (
    r.harnessError === true ||
    r.lost > 0 ||
    r.duplicated > 0 ||
    r.misreported > 0 ||
    (r.orphaned > 0 && !r.orphansExpected)
  );
}
