import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { CONFORMANCE_CHECKS, type ConformanceCheck } from '../../../src/core/sink/testkit.js';
import { MUTATIONS, MUTATION_FAULTS, type Mutation } from '../../fixtures/plugins/sink-broken/index.js';
import { leakCheck } from '../../helpers/leak-check.js';

/**
 * Every check of the sink conformance suite can fail (issue #22): the suite runs against the deliberately
 * broken sink of test/fixtures/plugins/sink-broken once per mutation, in a child `node --test` as
 * scripts/test.sh runs it, and exactly the checks meant to catch that fault fail, each for the expected
 * reason; with no mutation every check passes.
 */
const root = fileURLToPath(new URL('../../../', import.meta.url));
const entry = 'test/fixtures/plugins/sink-broken/conformance.ts';
const reporter = './test/fixtures/plugins/sink-broken/reporter.js';
const leaks = leakCheck();

const EXPECTED: Readonly<Record<Mutation, { readonly caughtBy: readonly ConformanceCheck[]; readonly because: RegExp }>> = {
  'ignore-abort': { caughtBy: ['abortedBeforeCreate', 'abortedWhileRunning'], because: /all resolved (under an aborted signal|after the changefeed's signal was aborted)/ },
  'abort-only-at-create': { caughtBy: ['abortedWhileRunning'], because: /writeRows, flush and writeDDL all resolved after the changefeed's signal was aborted/ },
  'abort-error-hides-reason': { caughtBy: ['abortedBeforeCreate', 'abortedWhileRunning'], because: /rejected .*but its error does not name (the abort|it): Error: broken sink: \w+ refused, the sink is closed/ },
  'lower-flush-unacknowledges': { caughtBy: ['flushMonotone'], because: /after flush\(10\) then flush\(5\), the state of \S+\.orders differs/ },
  'flush-resends-repeated-ts': { caughtBy: ['commitOrder', 'flushMonotone'], because: /after (flush\(\d+\)|a second flush\(10\) with nothing new), the state of \S+ differs/ },
  'early-ack': { caughtBy: ['commitOrder', 'flushMonotone', 'writesDuringFlush', 'replay', 'ddlBarrier'], because: /(the state of \S+|the rows on both sides of ADD COLUMN) differs? from what/ },
  'drop-writes-during-flush': { caughtBy: ['writesDuringFlush'], because: /after flush\(605\), writes while it was pending, and flush\(610\), the state of \S+\.orders differs from what the transactions imply/ },
  'drop-rows': { caughtBy: ['commitOrder', 'replay'], because: /the state of \S+\.orders differs from what the transactions imply/ },
  'reverse-rows': { caughtBy: ['commitOrder', 'replay'], because: /the state of \S+\.orders differs from what the transactions imply/ },
  'replay-not-idempotent': { caughtBy: ['replay'], because: /after the replay of the second half, the state of \S+ differs/ },
  'stale-columns': { caughtBy: ['ddlBarrier'], because: /the rows on both sides of ADD COLUMN differ from what was written/ },
  'ddl-backfills-earlier-rows': { caughtBy: ['ddlBarrier'], because: /the rows on both sides of ADD COLUMN differ from what was written/ },
  'timer-after-close': { caughtBy: ['close'], because: /1 socket\/timer handle\(s\) left after close/ },
  'close-not-idempotent': { caughtBy: ['close'], because: /^Error: broken sink: already closed$/ },
  'accepts-unknown-parameters': { caughtBy: ['parseConfig'], because: /parseConfig should name "no-such-parameter"/ },
  'stateful-parse-config': { caughtBy: ['parseConfig'], because: /parseConfig of the same URI gives the same config/ },
};

interface Outcome {
  /** Check names (node:test's test names) that passed and failed, with the failure's error. */
  readonly passed: readonly string[];
  readonly failed: readonly { readonly name: string; readonly error: string }[];
  /** Failures that are not a check's: a hook, the file itself. */
  readonly problems: readonly string[];
  readonly exitCode: number | null;
  readonly stderr: string;
}

/** Runs the conformance suite against the broken sink with `mutation` (none when undefined) in a child node --test. */
async function runConformance(mutation: Mutation | undefined): Promise<Outcome> {
  const env: NodeJS.ProcessEnv = { ...process.env, TSX_TSCONFIG_PATH: 'tsconfig.test.json', TIDEMARK_BROKEN_SINK_MUTATION: mutation ?? '' };
  // this file runs under node --test, which marks its children; the grandchild must run as a test runner of its own
  delete env['NODE_TEST_CONTEXT'];
  const child = spawn(process.execPath, ['--import', 'tsx', '--test', `--test-reporter=${reporter}`, entry], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const exitCode = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code) => resolve(code));
  }).finally(() => clearTimeout(killer));
  const passed: string[] = [];
  const failed: { name: string; error: string }[] = [];
  const problems: string[] = [];
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    const event = JSON.parse(line) as { result: 'pass' | 'fail'; name: string; nesting: number; failureType?: string; error?: string };
    if (event.nesting === 1) {
      if (event.result === 'pass') passed.push(event.name);
      else failed.push({ name: event.name, error: event.error ?? '' });
    } else if (event.result === 'fail' && event.failureType !== 'subtestsFailed') {
      problems.push(`${event.name}: ${event.failureType ?? '?'}: ${event.error ?? ''}`);
    }
  }
  return { passed, failed, problems, exitCode, stderr };
}

const allChecks = Object.values(CONFORMANCE_CHECKS) as string[];

function assertRanEveryCheck(outcome: Outcome, label: string): void {
  assert.deepEqual(outcome.problems, [], `${label}: failures outside the checks\n${outcome.stderr}`);
  const ran = [...outcome.passed, ...outcome.failed.map((f) => f.name)].sort();
  assert.deepEqual(ran, [...allChecks].sort(), `${label}: the suite did not run every check once (exit code ${outcome.exitCode})\n${outcome.stderr}`);
}

describe('the sink conformance suite catches broken sinks', { concurrency: 2, timeout: 300_000 }, () => {
  after(() => leaks.check());

  it('every check is meant to catch at least one mutation', () => {
    const meant = new Set(Object.values(EXPECTED).flatMap((e) => e.caughtBy));
    assert.deepEqual(
      Object.keys(CONFORMANCE_CHECKS).filter((check) => !meant.has(check as ConformanceCheck)),
      [],
      'a check no mutation makes fail is not proven able to fail',
    );
  });

  it('with no mutation, every check passes', async () => {
    const outcome = await runConformance(undefined);
    assertRanEveryCheck(outcome, 'no mutation');
    assert.deepEqual(outcome.failed, [], 'the broken sink without a mutation conforms');
    assert.equal(outcome.exitCode, 0, outcome.stderr);
  });

  for (const mutation of MUTATIONS) {
    const { caughtBy, because } = EXPECTED[mutation];
    it(`${mutation} (${MUTATION_FAULTS[mutation]}) fails exactly: ${caughtBy.join(', ')}`, async () => {
      const outcome = await runConformance(mutation);
      assertRanEveryCheck(outcome, mutation);
      const failing = outcome.failed.map((f) => f.name).sort();
      const details = outcome.failed.map((f) => `  ${f.name}: ${f.error.split('\n')[0]}`).join('\n');
      assert.deepEqual(failing, caughtBy.map((check) => CONFORMANCE_CHECKS[check]).sort(), `${mutation}: the failing checks differ from the expected ones\n${details}`);
      for (const failure of outcome.failed) assert.match(failure.error, because, `${mutation}: "${failure.name}" failed for another reason`);
      assert.notEqual(outcome.exitCode, 0, 'the child run reports the failures in its exit code');
    });
  }
});
