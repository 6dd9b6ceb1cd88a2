import { readFileSync } from 'node:fs';

/**
 * Prints the top self-time functions of a `.cpuprofile` (from `node --cpu-prof`), and the same
 * grouped by package, so docs/performance.md can say where a worker's CPU went.
 * Usage: tsx bench/profile-summary.ts <file.cpuprofile> [top]
 */
interface Node {
  id: number;
  children?: number[];
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface Profile {
  nodes: Node[];
  samples: number[];
  timeDeltas: number[];
}

const [file, topText] = process.argv.slice(2);
if (!file) throw new Error('usage: tsx bench/profile-summary.ts <file.cpuprofile> [top]');
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0)));
let total = 0;
const byFunction = new Map<string, number>();
const byPackage = new Map<string, number>();
for (const [id, micros] of self) {
  const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
  total += micros;
  const where = url.replace(/^file:\/\/.*?\/(node_modules|dist|src)\//, '$1/');
  const key = `${functionName || '(anonymous)'} ${where ? `${where}:${lineNumber + 1}` : ''}`.trim();
  byFunction.set(key, (byFunction.get(key) ?? 0) + micros);
  const pkg =
    /node_modules\/((@[^/]+\/)?[^/]+)/.exec(url)?.[1] ??
    (url.startsWith('node:') ? 'node:internal' : url.includes('/dist/') ? 'sidecar' : url ? 'other' : functionName);
  byPackage.set(pkg, (byPackage.get(pkg) ?? 0) + micros);
}
// Inclusive time: a sample counts for every function and package on its stack (once each).
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const packageOf = (url: string, functionName: string) =>
  /node_modules\/((@[^/]+\/)?[^/]+)/.exec(url)?.[1] ??
  (url.startsWith('node:')
    ? 'node:internal'
    : /\/(dist|src)\//.test(url)
      ? `sidecar ${url.replace(/^.*\/(dist|src)\//, '')}`
      : url
        ? 'other'
        : functionName);
const inclusiveFn = new Map<string, number>();
const inclusivePkg = new Map<string, number>();
for (const [id, micros] of self) {
  const fns = new Set<string>();
  const pkgs = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const { functionName, url, lineNumber } = byId.get(at)!.callFrame;
    if (functionName === '(root)') continue;
    fns.add(
      `${functionName || '(anonymous)'} ${url.replace(/^file:\/\/.*?\/(node_modules|dist|src)\//, '$1/')}:${lineNumber + 1}`,
    );
    pkgs.add(packageOf(url, functionName));
  }
  for (const f of fns) inclusiveFn.set(f, (inclusiveFn.get(f) ?? 0) + micros);
  for (const p of pkgs) inclusivePkg.set(p, (inclusivePkg.get(p) ?? 0) + micros);
}
const top = Number(topText ?? 25);
const show = (title: string, map: Map<string, number>, n: number) => {
  console.log(`\n${title} (of ${(total / 1e6).toFixed(2)} s sampled)`);
  for (const [key, micros] of [...map].sort((a, b) => b[1] - a[1]).slice(0, n))
    console.log(`${((micros / total) * 100).toFixed(1).padStart(5)}%  ${key}`);
};
show('self time by function', byFunction, top);
show('self time by package', byPackage, 15);
show('inclusive time by package or sidecar file', inclusivePkg, 20);
show('inclusive time by function', inclusiveFn, top);
