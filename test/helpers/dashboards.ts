/**
 * The Grafana dashboards in dashboards/, read as data: their PromQL and Infinity queries, and
 * just enough PromQL reading to say which metrics and labels an expression names.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const DASHBOARDS_DIR = new URL('../../dashboards/', import.meta.url).pathname;

export interface Panel {
  id?: number;
  type: string;
  title: string;
  datasource?: { type?: string; uid?: string };
  gridPos?: { h: number; w: number; x: number; y: number };
  targets?: Array<Record<string, unknown>>;
  panels?: Panel[];
}

export interface Dashboard {
  file: string;
  uid: string;
  title: string;
  description?: string;
  schemaVersion: number;
  panels: Panel[];
  templating: { list: Array<Record<string, unknown> & { name: string; type: string }> };
}

export function loadDashboards(): Dashboard[] {
  return readdirSync(DASHBOARDS_DIR)
    .filter((file) => file.endsWith('.json'))
    .sort()
    .map((file) => ({ ...JSON.parse(readFileSync(join(DASHBOARDS_DIR, file), 'utf8')), file }));
}

/** Every panel, rows' nested panels included. */
export function allPanels(dashboard: Dashboard): Panel[] {
  return dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
}

export interface Query {
  where: string;
  expr: string;
}

/** The PromQL of every panel target and of every query variable (`label_values(...)`). */
export function promQueries(dashboard: Dashboard): Query[] {
  const queries: Query[] = [];
  for (const panel of allPanels(dashboard)) {
    for (const target of panel.targets ?? []) {
      if (typeof target['expr'] === 'string') {
        queries.push({
          where: `${dashboard.file} › ${panel.title} › ${target['refId']}`,
          expr: target['expr'],
        });
      }
    }
  }
  for (const variable of dashboard.templating.list) {
    if (variable.type !== 'query') continue;
    const query = variable['query'] as { query?: string } | string;
    const expr = typeof query === 'string' ? query : query?.query;
    if (expr) queries.push({ where: `${dashboard.file} › variable ${variable.name}`, expr });
  }
  return queries;
}

export interface InfinityQuery {
  where: string;
  url: string;
  root: string;
  columns: string[];
}

export function infinityQueries(dashboard: Dashboard): InfinityQuery[] {
  return allPanels(dashboard).flatMap((panel) =>
    (panel.targets ?? [])
      .filter((target) => target['source'] === 'url' && typeof target['url'] === 'string')
      .map((target) => ({
        where: `${dashboard.file} › ${panel.title}`,
        url: target['url'] as string,
        root: String(target['root_selector'] ?? ''),
        columns: ((target['columns'] as Array<{ selector: string }>) ?? []).map((c) => c.selector),
      })),
  );
}

/** `label_values(metric{...}, label)` as the selector it reads and the label it lists. */
export function labelValuesQuery(expr: string): { selector: string; label: string } | null {
  const match = /^\s*label_values\(\s*(.+)\s*,\s*([a-zA-Z_]\w*)\s*\)\s*$/.exec(expr);
  return match ? { selector: match[1]!, label: match[2]! } : null;
}

/** Grafana's variables replaced by what Prometheus accepts: every value, a window, a step. */
export function toPromQL(expr: string, values: { rateInterval?: string; range?: string } = {}): string {
  return expr
    .replaceAll('$__rate_interval', values.rateInterval ?? '1m')
    .replaceAll('$__interval', '15s')
    .replaceAll('$__range', values.range ?? '5m')
    .replace(/\$\{?[a-zA-Z_]\w*\}?/g, '.*');
}

const KEYWORDS = new Set([
  'and',
  'or',
  'unless',
  'bool',
  'offset',
  'by',
  'without',
  'on',
  'ignoring',
  'group_left',
  'group_right',
  'inf',
  'nan',
]);
const GROUPING = /\b(by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)/g;

/** The metric and label names a PromQL expression reads. Strings, ranges and functions aside. */
export function promqlNames(expr: string): { metrics: string[]; labels: string[] } {
  const labels = new Set<string>();
  let text = expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'/g, '""');
  text = text.replace(/\{([^}]*)\}/g, (_, matchers: string) => {
    for (const m of matchers.matchAll(/([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)/g)) labels.add(m[1]!);
    return ' ';
  });
  text = text.replace(/\[[^\]]*\]/g, ' ');
  text = text.replace(GROUPING, (_, _kw: string, list: string) => {
    for (const name of list.split(',')) if (name.trim()) labels.add(name.trim());
    return ' ';
  });
  const metrics = new Set<string>();
  for (const m of text.matchAll(/(?<![\w.:$])([a-zA-Z_:][\w:]*)(?![\w:])(?!\s*\()/g)) {
    if (!KEYWORDS.has(m[1]!.toLowerCase())) metrics.add(m[1]!);
  }
  return { metrics: [...metrics], labels: [...labels] };
}
