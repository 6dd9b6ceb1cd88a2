import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { createGatewayMetrics } from '../../src/gateway/front/metrics.js';
import { createWorkerMetrics } from '../../src/worker/metrics.js';
import { installed, readRepoFile, repoPath, yamlDocuments, type Loose } from '../support/manifests.js';

/** Every series name the two registries can export (histograms as their _bucket, _sum and _count). */
async function exportedNames(): Promise<Set<string>> {
  const names = new Set<string>();
  for (const registry of [createWorkerMetrics().registry, createGatewayMetrics().registry])
    for (const metric of await registry.getMetricsAsJSON()) {
      names.add(metric.name);
      if (String(metric.type) === 'histogram')
        for (const suffix of ['_bucket', '_sum', '_count']) names.add(metric.name + suffix);
      if (String(metric.type) === 'summary') for (const suffix of ['_sum', '_count']) names.add(metric.name + suffix);
    }
  return names;
}

const KEYWORDS = new Set([
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'and',
  'or',
  'unless',
  'bool',
  'offset',
]);

/** The metric names a PromQL expression reads: what is left once strings, matchers, ranges, groupings and functions are gone. */
function metricsIn(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\$\w+/g, ' ');
  const words = [...bare.matchAll(/([A-Za-z_:][\w:]*)(\s*\()?/g)]
    .filter((m) => m[2] === undefined && !KEYWORDS.has(m[1]!))
    .map((m) => m[1]!);
  return [...new Set(words)];
}

interface Panel {
  id: number;
  type: string;
  title: string;
  gridPos: { x: number; y: number; w: number; h: number };
  datasource?: { uid: string };
  targets?: { expr: string; refId: string; datasource?: { uid: string } }[];
}

const dashboard = JSON.parse(readRepoFile('ops/grafana-dashboard.json'));
const panels = dashboard.panels as Panel[];
const queries = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));
const rulesFile = yamlDocuments('ops/prometheus-alerts.yaml')[0]!;
const rules = (rulesFile.groups as { name: string; rules: Loose[] }[]).flatMap((g) => g.rules);

describe('the Grafana dashboard', () => {
  it('is a dashboard Grafana imports: uid, title, schema version, a Prometheus data-source variable', () => {
    expect(dashboard).toMatchObject({
      uid: 'nvcf-sidecar',
      title: expect.any(String),
      schemaVersion: expect.any(Number),
    });
    const variable = dashboard.templating.list.find((v: Loose) => v.type === 'datasource');
    expect(variable).toMatchObject({ name: 'datasource', query: 'prometheus' });
    for (const panel of panels.filter((p) => p.type !== 'row')) {
      expect(panel.datasource?.uid, panel.title).toBe('${datasource}');
      expect(panel.targets?.length, panel.title).toBeGreaterThan(0);
      expect(new Set(panel.targets!.map((t) => t.refId)).size, panel.title).toBe(panel.targets!.length);
    }
  });

  it('lays its panels out on the 24-column grid without two sharing an id or a place', () => {
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    const cells = new Set<string>();
    for (const { gridPos: g, title } of panels) {
      expect(g.x + g.w, title).toBeLessThanOrEqual(24);
      for (let x = g.x; x < g.x + g.w; x++)
        for (let y = g.y; y < g.y + g.h; y++) {
          expect(cells.has(`${x},${y}`), `${title} overlaps another panel`).toBe(false);
          cells.add(`${x},${y}`);
        }
    }
  });

  it('queries only metrics the worker and the gateway export', async () => {
    const names = await exportedNames();
    for (const { panel, expr } of queries) {
      const used = metricsIn(expr);
      expect(used.length, `${panel}: ${expr}`).toBeGreaterThan(0);
      for (const name of used) expect(names.has(name), `${panel}: ${name} is not exported`).toBe(true);
    }
    // Every nvcf_ metric has a place on the dashboard.
    const shown = new Set(queries.flatMap((q) => metricsIn(q.expr)).map((n) => n.replace(/_(bucket|sum|count)$/, '')));
    for (const name of names)
      if (name.startsWith('nvcf_') && !/_(bucket|sum|count)$/.test(name)) expect(shown, name).toContain(name);
  });

  it.skipIf(!installed('promtool'))('writes every query in valid PromQL (checked by promtool)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nvcf-dashboard-'));
    const asRules = queries.map((q, i) => ({
      record: `dashboard:query_${i}`,
      expr: q.expr.replace(/\$__rate_interval/g, '5m'),
    }));
    writeFileSync(join(dir, 'queries.yaml'), stringify({ groups: [{ name: 'dashboard', rules: asRules }] }));
    execFileSync('promtool', ['check', 'rules', join(dir, 'queries.yaml')], { stdio: 'pipe' });
  });
});

describe('the Prometheus alert rules', () => {
  it('give every alert a unique name, an expression, a duration, a severity and a summary', () => {
    const names = rules.map((r) => r.alert as string);
    expect(new Set(names).size).toBe(names.length);
    for (const rule of rules) {
      expect(rule.expr, rule.alert).toEqual(expect.any(String));
      expect(rule.for, rule.alert).toMatch(/^\d+[smh]$/);
      expect(['critical', 'warning', 'info'], rule.alert).toContain(rule.labels.severity);
      expect(rule.annotations.summary, rule.alert).toEqual(expect.any(String));
    }
  });

  it('read only metrics the worker and the gateway export', async () => {
    const names = await exportedNames();
    for (const rule of rules) {
      const used = metricsIn(rule.expr as string);
      expect(used.length, rule.alert).toBeGreaterThan(0);
      for (const name of used) expect(names.has(name), `${rule.alert}: ${name} is not exported`).toBe(true);
    }
  });

  it.skipIf(!installed('promtool'))('load in Prometheus and fire as their unit tests expect (promtool)', () => {
    execFileSync('promtool', ['check', 'rules', repoPath('ops/prometheus-alerts.yaml')], { stdio: 'pipe' });
    execFileSync('promtool', ['test', 'rules', 'prometheus-alerts.test.yaml'], { cwd: repoPath('ops'), stdio: 'pipe' });
  });
});

describe('docs/operations.md', () => {
  it('describes every metric the worker and the gateway export under their own names', async () => {
    const doc = readRepoFile('docs/operations.md');
    for (const name of await exportedNames())
      if (name.startsWith('nvcf_') && !/_(bucket|sum|count)$/.test(name)) expect(doc, name).toContain(`\`${name}`);
  });
});
