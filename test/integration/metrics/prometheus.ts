import { execFile } from 'node:child_process';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const ROOT = new URL('../../../', import.meta.url).pathname;
export const SERVICES_SCRIPT = join(ROOT, 'scripts/services.sh');
export const RULES_FILE = join(ROOT, 'metrics/tidemark.rules.yml');
export const DASHBOARD_FILE = join(ROOT, 'metrics/grafana-dashboard.json');

export interface PromSample {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

/**
 * The Prometheus of `scripts/services.sh up prometheus`, driven through its HTTP API. Where it reads its scrape
 * targets (file_sd) and extra rule files is taken from its own loaded config (GET /api/v1/status/config), so a
 * test writes where that Prometheus looks, whatever TIDEMARK_SERVICES_DIR was when it started.
 */
export class Prometheus {
  private readonly written: string[] = [];

  private constructor(
    readonly url: string,
    private readonly targetsDir: string,
    private readonly rulesDir: string,
  ) {}

  /** Starts Prometheus with the services script (installs it when missing, idempotent) and reads its config. */
  static async start(): Promise<Prometheus> {
    await run('bash', [SERVICES_SCRIPT, 'up', 'prometheus'], { timeout: 600_000 });
    const addr = process.env['TIDEMARK_PROMETHEUS_ADDR'] ?? '127.0.0.1:9090';
    const url = `http://${addr}`;
    const res = await fetch(`${url}/api/v1/status/config`, { signal: AbortSignal.timeout(5000) });
    const yaml = ((await res.json()) as { data: { yaml: string } }).data.yaml;
    const targets = /- (\S+)\/\*\.json/.exec(yaml)?.[1];
    const rules = /- (\S+\/rules)\/\*\.yml/.exec(yaml)?.[1];
    if (targets === undefined || rules === undefined) {
      throw new Error(`the Prometheus on ${addr} was not started by scripts/services.sh (no file_sd targets/*.json or rules/*.yml in its config):\n${yaml}`);
    }
    return new Prometheus(url, targets, rules);
  }

  /** Writes a file_sd target group (Prometheus picks it up within its refresh interval, 1 s). */
  writeTargets(name: string, targets: readonly string[], labels: Record<string, string>): void {
    const file = join(this.targetsDir, `${name}.json`);
    writeFileSync(`${file}.tmp`, JSON.stringify([{ targets, labels }]));
    // rename: Prometheus never reads a half-written file
    renameSync(`${file}.tmp`, file);
    this.written.push(file);
  }

  /** Adds a rule file and makes Prometheus load it (POST /-/reload). */
  async writeRules(name: string, text: string): Promise<void> {
    const file = join(this.rulesDir, `${name}.yml`);
    writeFileSync(file, text);
    this.written.push(file);
    await this.reload();
  }

  async reload(): Promise<void> {
    const res = await fetch(`${this.url}/-/reload`, { method: 'POST', signal: AbortSignal.timeout(10_000) });
    if (!res.ok) throw new Error(`Prometheus reload: HTTP ${res.status} ${await res.text()}`);
  }

  /** An instant query; the result vector. */
  async query(expr: string): Promise<PromSample[]> {
    const res = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(expr)}`, { signal: AbortSignal.timeout(5000) });
    const body = (await res.json()) as { status: string; error?: string; data: { result: PromSample[] } };
    if (body.status !== 'success') throw new Error(`query ${expr}: ${body.error}`);
    return body.data.result;
  }

  /** The value of a query that gives one sample, or undefined when it gives none. */
  async value(expr: string): Promise<number | undefined> {
    const [sample] = await this.query(expr);
    return sample === undefined ? undefined : Number(sample.value[1]);
  }

  /** The rule groups Prometheus has loaded, by file. */
  async ruleFiles(): Promise<string[]> {
    const res = await fetch(`${this.url}/api/v1/rules`, { signal: AbortSignal.timeout(5000) });
    const body = (await res.json()) as { data: { groups: { file: string; name: string }[] } };
    return body.data.groups.map((g) => `${g.file}#${g.name}`);
  }

  /** Removes what this test wrote and reloads. */
  async cleanUp(): Promise<void> {
    for (const file of this.written.splice(0)) rmSync(file, { force: true });
    await this.reload().catch(() => undefined);
  }
}

/**
 * The series a PromQL text refers to: every `tidemark_…` name, histogram suffixes (`_bucket`, `_sum`, `_count`)
 * mapped to the metric they belong to.
 */
export function referencedMetrics(text: string, histograms: ReadonlySet<string>): Set<string> {
  const names = new Set<string>();
  for (const [name] of text.matchAll(/\btidemark_[a-z0-9_]+/g)) {
    const base = name.replace(/_(bucket|sum|count)$/, '');
    names.add(base !== name && histograms.has(base) ? base : name);
  }
  return names;
}

/** Every PromQL expression of the rules file (expr: lines, folded blocks included) and of the dashboard. */
export function rulesAndDashboardExprs(): { rules: string; dashboard: string[] } {
  // the rules' text without comment lines (they name series families like tidemark_owner_*)
  const rules = readFileSync(RULES_FILE, 'utf8').split('\n').filter((line) => !/^\s*#/.test(line)).join('\n');
  const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as { panels: { targets?: { expr: string }[] }[]; templating: { list: { query?: unknown }[] }; annotations: { list: { expr?: string }[] } };
  const exprs: string[] = [];
  for (const p of dashboard.panels) for (const t of p.targets ?? []) exprs.push(t.expr);
  for (const v of dashboard.templating.list) if (typeof v.query === 'string') exprs.push(v.query);
  for (const a of dashboard.annotations.list) if (a.expr !== undefined) exprs.push(a.expr);
  return { rules, dashboard: exprs };
}
