/**
 * docker-compose.yml and what it mounts, checked without Docker (not on every machine) and
 * without a YAML library: every image pinned, every mounted file present, the services wired to
 * each other by the names and ports they use, the demo token the same in every place, Grafana's
 * data source uids the ones the dashboards default to, and (where Debian's promtool is
 * installed) the Prometheus config accepted by Prometheus' own checker.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadDashboards } from '../helpers/dashboards.js';

const ROOT = new URL('../..', import.meta.url).pathname;
const read = (path: string) => readFileSync(join(ROOT, path), 'utf8');
const compose = read('docker-compose.yml');
const PROMETHEUS_CONFIG = 'deploy/prometheus/prometheus.yml';
const DATASOURCES = 'deploy/grafana/provisioning/datasources/llm-meter.yaml';
const DASHBOARD_PROVIDER = 'deploy/grafana/provisioning/dashboards/llm-meter.yaml';
const DOCKERFILE = 'deploy/llm-meter.Dockerfile';
const PROMTOOL = '/usr/bin/promtool';

/** The block of one service: its lines, indented below `  name:` under `services:`. */
function services(): Map<string, string> {
  const lines = compose.split('\n');
  const start = lines.indexOf('services:');
  expect(start, 'a top-level services: key').toBeGreaterThanOrEqual(0);
  const blocks = new Map<string, string>();
  let name: string | null = null;
  for (const line of lines.slice(start + 1)) {
    if (/^\S/.test(line)) break;
    const header = /^ {2}([a-z][\w-]*):\s*$/.exec(line);
    if (header) {
      name = header[1]!;
      blocks.set(name, '');
    } else if (name) {
      blocks.set(name, `${blocks.get(name)}${line}\n`);
    }
  }
  return blocks;
}

const blocks = services();
const block = (name: string) => blocks.get(name) ?? '';
const image = (name: string) => /^ {4}image:\s*(\S+)\s*$/m.exec(block(name))?.[1];
/** `- ./host/path:/container/path[:ro]` bind mounts of a service. */
const mounts = (name: string) =>
  [...block(name).matchAll(/^ {6}- (\.\/[^:\s]+):(\/[^:\s]+)(?::ro)?\s*$/gm)].map((m) => ({
    host: m[1]!,
    container: m[2]!,
  }));

describe('docker-compose.yml', () => {
  it('starts the collector, Jaeger, Prometheus, Grafana and llm-meter serve --demo', () => {
    expect([...blocks.keys()].sort()).toEqual([
      'grafana',
      'jaeger',
      'llm-meter',
      'otel-collector',
      'prometheus',
    ]);
    expect(compose).not.toMatch(/\t/);
  });

  it('pins every image to a version', () => {
    const expected: Record<string, RegExp> = {
      'otel-collector': /^otel\/opentelemetry-collector-contrib:\d+\.\d+\.\d+$/,
      jaeger: /^jaegertracing\/jaeger:\d+\.\d+\.\d+$/,
      prometheus: /^prom\/prometheus:v\d+\.\d+\.\d+$/,
      grafana: /^grafana\/grafana:\d+\.\d+\.\d+$/,
    };
    for (const [service, pattern] of Object.entries(expected)) {
      expect(image(service), `${service} image`).toMatch(pattern);
    }
    const dockerfile = read(DOCKERFILE);
    const bases = [...dockerfile.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]!);
    expect(bases.length, 'FROM lines').toBeGreaterThan(0);
    for (const base of bases)
      expect(base, 'Dockerfile base image').toMatch(/^node:20\.\d+\.\d+-[a-z]+-slim$/);
    expect(block('grafana'), 'the Infinity plugin is pinned too').toMatch(
      /GF_PLUGINS_PREINSTALL_SYNC: yesoreyeram-infinity-datasource@\d+\.\d+\.\d+/,
    );
  });

  it('mounts files that exist in the repository', () => {
    const all = [...blocks.keys()].flatMap((service) => mounts(service).map((m) => ({ service, ...m })));
    expect(all.map((m) => `${m.service} ${m.host}`).sort()).toEqual([
      'grafana ./dashboards',
      'grafana ./deploy/grafana/provisioning',
      'otel-collector ./otel-collector.yaml',
      'prometheus ./deploy/prometheus/prometheus.yml',
    ]);
    for (const mount of all) expect(existsSync(join(ROOT, mount.host)), `${mount.host} exists`).toBe(true);
    const build = block('llm-meter');
    expect(build).toMatch(/^ {6}context: \.\s*$/m);
    expect(build).toContain(`dockerfile: ${DOCKERFILE}`);
    expect(existsSync(join(ROOT, DOCKERFILE)), DOCKERFILE).toBe(true);
    for (const copied of [...read(DOCKERFILE).matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) =>
      m[1]!.split(' '),
    )) {
      expect(existsSync(join(ROOT, copied)), `Dockerfile copies ${copied}`).toBe(true);
    }
  });

  it('runs llm-meter serve --demo with a database on a volume, spans to the collector', () => {
    const service = block('llm-meter');
    for (const arg of ['- serve', '- --demo', '- --port', '- --db', '- --api-token']) {
      expect(service, `llm-meter command ${arg}`).toContain(arg);
    }
    expect(service).toMatch(/OTEL_EXPORTER_OTLP_ENDPOINT: http:\/\/otel-collector:4318/);
    expect(service).toMatch(/- llm-meter-data:\/data/);
    expect(service).toMatch(/"8787:8787"/);
  });

  it('uses the same demo token for the server, Prometheus and Grafana', () => {
    const serverToken = /- --api-token\s*\n\s*- (\S+)/.exec(block('llm-meter'))?.[1];
    expect(serverToken, 'the server token').toBeTruthy();
    expect(read(PROMETHEUS_CONFIG)).toMatch(new RegExp(`credentials: ${serverToken}\\s*$`, 'm'));
    expect(read(DATASOURCES)).toMatch(new RegExp(`bearerToken: ${serverToken}\\s*$`, 'm'));
  });

  it('points Prometheus at llm-meter and the collector, and the collector at Jaeger', () => {
    const config = read(PROMETHEUS_CONFIG);
    expect(config).toMatch(/targets: \["llm-meter:8787"\]/);
    expect(config).toMatch(/metrics_path: \/metrics/);
    const collector = read('otel-collector.yaml');
    for (const [port, what] of [
      ['8889', 'span metrics exporter'],
      ['8888', 'collector telemetry'],
    ] as const) {
      expect(config, `Prometheus scrapes the ${what}`).toContain(`"otel-collector:${port}"`);
      expect(collector, `the collector serves its ${what} on ${port}`).toContain(port);
    }
    expect(collector, 'the collector exports to the jaeger service by default').toMatch(/jaeger:4317/);
    expect(block('otel-collector')).toContain('/etc/otelcol-contrib/config.yaml');
  });

  it.skipIf(!existsSync(PROMTOOL))(
    `has a Prometheus config that promtool accepts${existsSync(PROMTOOL) ? '' : ` (skipped: no ${PROMTOOL})`}`,
    () => {
      const out = execFileSync(
        PROMTOOL,
        ['check', 'config', '--syntax-only', join(ROOT, PROMETHEUS_CONFIG)],
        {
          encoding: 'utf8',
        },
      );
      expect(out).toContain('SUCCESS');
    },
  );
});

describe('Grafana provisioning', () => {
  it('provisions the dashboards folder mounted from dashboards/', () => {
    const mount = mounts('grafana').find((m) => m.host === './dashboards');
    expect(read(DASHBOARD_PROVIDER)).toMatch(new RegExp(`path: ${mount?.container}\\s*$`, 'm'));
    const home = /GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH: (\S+)/.exec(block('grafana'))?.[1] ?? '';
    expect(home.startsWith(`${mount?.container}/`), 'home dashboard in the mounted folder').toBe(true);
    expect(existsSync(join(ROOT, 'dashboards', home.slice(`${mount?.container}/`.length))), home).toBe(true);
  });

  it('provisions the data sources the dashboards default to', () => {
    const datasources = read(DATASOURCES);
    const uids = new Map(
      [...datasources.matchAll(/^ {4}uid: (\S+)\s*\n {4}type: (\S+)\s*$/gm)].map((m) => [m[1]!, m[2]!]),
    );
    expect(uids.get('prometheus')).toBe('prometheus');
    expect(datasources).toMatch(/url: http:\/\/prometheus:9090/);
    expect(datasources).toMatch(/url: http:\/\/llm-meter:8787/);
    for (const dashboard of loadDashboards()) {
      for (const variable of dashboard.templating.list.filter((v) => v.type === 'datasource')) {
        const current = (variable['current'] as { value: string }).value;
        expect(uids.get(current), `${dashboard.file} › ${variable.name} defaults to a provisioned uid`).toBe(
          variable['query'],
        );
      }
    }
  });
});
