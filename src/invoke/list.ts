import { CallFailed } from './result.js';
import { listFunctions, type FunctionSummary } from '../gateway/lifecycle/client.js';

/**
 * `nvcf-sidecar invoke --list`: the gateway's functions, one version a line, as a table a person
 * reads (or `cut`s): registered versions with their deployment status, and versions only their
 * workers announced (a `dev` function, a worker run by hand).
 */
const COLUMNS = ['FUNCTION ID', 'VERSION ID', 'NAME', 'STATUS'] as const;

function functionTable(functions: readonly FunctionSummary[]): string {
  const rows = [
    [...COLUMNS],
    ...[...functions]
      .sort((a, b) => a.name.localeCompare(b.name) || a.createdAt.localeCompare(b.createdAt))
      .map((f) => [f.id, f.versionId, f.name, f.status]),
  ];
  const widths = COLUMNS.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return rows
    .map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '))
    .join('\n');
}

/** Prints the table to stdout; a gateway without functions gets a line on stderr instead. */
export async function printFunctions(gateway: string, apiKey: string | undefined): Promise<void> {
  // fetch's own TypeError means the gateway was not reached; anything else is its answer.
  const functions = await listFunctions({ url: gateway, apiKey }).catch((err: Error) => {
    throw err instanceof TypeError ? err : new CallFailed(err.message);
  });
  if (functions.length === 0) {
    process.stderr.write(
      `the gateway at ${gateway} has no functions: register one (POST /v2/nvcf/functions) or run "nvcf-sidecar dev"\n`,
    );
    return;
  }
  process.stdout.write(`${functionTable(functions)}\n`);
}
