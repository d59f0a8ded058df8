import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, it } from 'node:test';

const run = promisify(execFile);
const METRICS = new URL('../../../metrics/', import.meta.url).pathname;

/** promtool from Debian's prometheus package; a clear failure (never a skip) when it is missing. */
async function promtool(args: readonly string[]): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run('promtool', args, { cwd: METRICS, timeout: 60_000 });
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') throw new Error('promtool is not installed; install it with: bash scripts/services.sh install prometheus');
    throw new Error(`promtool ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
}

/**
 * The alert rules of metrics/ checked and unit-tested by Prometheus' own tool: `promtool check rules` (syntax,
 * PromQL, templates) and `promtool test rules` (alerts fire and resolve on input series, metrics/tests/).
 */
describe('metrics/ alert rules (promtool)', () => {
  const ruleFiles = readdirSync(METRICS).filter((f) => f.endsWith('.rules.yml'));
  const testFiles = readdirSync(join(METRICS, 'tests')).filter((f) => f.endsWith('.test.yml')).map((f) => join('tests', f));

  it('promtool check rules: every rule file is valid', async () => {
    assert.ok(ruleFiles.length > 0);
    const { stdout } = await promtool(['check', 'rules', ...ruleFiles]);
    assert.match(stdout, /SUCCESS: \d+ rules found/);
  });

  it('promtool test rules: the unit tests of the alerts pass', async () => {
    assert.ok(testFiles.length > 0);
    const { stdout, stderr } = await promtool(['test', 'rules', ...testFiles]);
    assert.match(stdout + stderr, /SUCCESS/);
  });

  it('the issue\'s alerts are all there, and each is unit-tested', () => {
    const rules = ruleFiles.map((f) => readFileSync(join(METRICS, f), 'utf8')).join('\n');
    const alerts = [...rules.matchAll(/- alert: (\S+)/g)].map((m) => m[1]);
    for (const name of [
      'TidemarkChangefeedFailed', 'TidemarkChangefeedWarning', 'TidemarkChangefeedCheckpointLagHigh', 'TidemarkChangefeedCheckpointLagCritical',
      'TidemarkNoOwner', 'TidemarkCaptureRestarting', 'TidemarkBinlogPurgedAheadOfChangefeed', 'TidemarkSinkErrors',
    ]) {
      assert.ok(alerts.includes(name), `${name} is missing`);
    }
    const tests = testFiles.map((f) => readFileSync(join(METRICS, f), 'utf8')).join('\n');
    const untested = alerts.filter((a) => !new RegExp(`alertname: ${a}\\n[\\s\\S]*?exp_alerts:\\n\\s+- exp_labels`).test(tests));
    assert.deepEqual(untested, [], `alerts never seen firing in metrics/tests: ${untested.join(', ')}`);
  });

  it('the Grafana dashboard is valid JSON with a PromQL target on every panel', () => {
    const dashboard = JSON.parse(readFileSync(join(METRICS, 'grafana-dashboard.json'), 'utf8')) as { uid: string; panels: { id: number; type: string; title: string; targets?: { expr: string }[] }[] };
    assert.equal(dashboard.uid, 'tidemark');
    const ids = dashboard.panels.map((p) => p.id);
    assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
    for (const p of dashboard.panels.filter((p) => p.type !== 'row')) {
      assert.ok((p.targets ?? []).length > 0 && p.targets!.every((t) => /tidemark_/.test(t.expr)), `panel "${p.title}" has a tidemark_ query`);
    }
  });
});
