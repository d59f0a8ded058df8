import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Etcd3 } from 'etcd3';
import { CdcServerGroup } from '../../helpers/cdc-process.js';
import { etcdEndpoint, mysqlUri, requireService, uniqueName } from '../../helpers/services.js';
import { seededRandom } from '../../helpers/seeded-random.js';

/** Requests per run; TIDEMARK_FUZZ_CASES for more, TIDEMARK_FUZZ_SEED for another sequence. */
const CASES = Number(process.env['TIDEMARK_FUZZ_CASES'] ?? 1500);
const SEED = Number(process.env['TIDEMARK_FUZZ_SEED'] ?? 20261205);

const ROUTES: readonly [method: string, path: string][] = [
  ['GET', '/api/v2/status'], ['GET', '/api/v2/health'], ['GET', '/api/v2/captures'], ['POST', '/api/v2/changefeeds'],
  ['GET', '/api/v2/changefeeds'], ['GET', '/api/v2/changefeeds/:id'], ['GET', '/api/v2/changefeeds/:id/tables'],
  ['GET', '/api/v2/changefeeds/:id/sink'], ['PUT', '/api/v2/changefeeds/:id'], ['POST', '/api/v2/changefeeds/:id/pause'],
  ['POST', '/api/v2/changefeeds/:id/resume'], ['DELETE', '/api/v2/changefeeds/:id'], ['POST', '/api/v2/captures/:id/drain'],
  ['GET', '/api/v2/processors'], ['GET', '/metrics'],
];
/** Path segments and query values a hostile client might send. */
const ODD = ['', 'x', 'fuzz', 'a'.repeat(400), '%', '%E0%A4%A', '%zz', '..%2F..%2Fetc', '%00', '😀', '%F0%9F%98%80', 'a%2Fb', ' ', '%20', '\'"<>', 'default', '-1', '18446744073709551616', 'NaN', '__proto__', 'constructor'];
const SINKS = ['blackhole://', 'blackhole://?x=1', 'mysql://', 'mysql://root@127.0.0.1:1/', 'kafka://127.0.0.1:1/t?protocol=nope', 'kafka://:99999/t', 'blackhole://?%zz=1', '', 'file:///etc/passwd', 'ftp://x', '://', 'mysql://u:p@[::1', 'x'.repeat(5000)];

/** A JSON value of any shape, sometimes deep or large. */
function anyValue(random: () => number, depth = 0): unknown {
  const pick = (n: number): number => Math.floor(random() * n);
  switch (depth > 3 ? pick(6) : pick(9)) {
    case 0: return null;
    case 1: return random() < 0.5;
    case 2: return [0, -1, 1e308, -1e308, 2 ** 53 + 1, 0.5, 2 ** 64][pick(7)];
    case 3: return ODD[pick(ODD.length)];
    case 4: return SINKS[pick(SINKS.length)];
    case 5: return String(pick(1e9));
    case 6: return Array.from({ length: pick(4) }, () => anyValue(random, depth + 1));
    case 7: return Object.fromEntries(Array.from({ length: pick(4) }, () => [ODD[pick(ODD.length)], anyValue(random, depth + 1)]));
    default: return { mode: anyValue(random, depth + 1), rules: [ODD[pick(ODD.length)]], 'chunk-rows': anyValue(random, depth + 1) };
  }
}

/** A request body: mostly a create/update body with fields of the wrong shape, sometimes not JSON at all. */
function body(random: () => number): string | undefined {
  const pick = (n: number): number => Math.floor(random() * n);
  switch (pick(8)) {
    case 0: return undefined;
    case 1: return ['{', '[', '{"a":', 'null', 'nul', '"\\ud800"', '{"__proto__": {"x": 1}}', '1e999', '[' .repeat(20_000) + ']'.repeat(20_000)][pick(9)];
    case 2: return JSON.stringify(anyValue(random));
    default: {
      const fields: Record<string, unknown> = {
        changefeed_id: random() < 0.5 ? uniqueName('fz').replaceAll('_', '-') : anyValue(random),
        sink_uri: random() < 0.6 ? SINKS[pick(SINKS.length)] : anyValue(random),
        upstream: random() < 0.5 ? mysqlUri('upstream') : ['mysql://root@127.0.0.1:1', 'mysql://', 'nope', ''][pick(4)],
      };
      for (const key of ['start_ts', 'target_ts', 'namespace', 'replica_config', 'overwrite_checkpoint_ts']) if (random() < 0.4) fields[key] = anyValue(random);
      if (random() < 0.3) fields['replica_config'] = { filter: { rules: [ODD[pick(ODD.length)]] }, snapshot: anyValue(random), sink: anyValue(random), mounter: anyValue(random) };
      return JSON.stringify(fields);
    }
  }
}

/**
 * The OpenAPI under hostile requests (the security issue's item 7): mutated paths, methods, query strings and
 * bodies against every route of a real cdc server. Every answer must be JSON with an error code and no stack
 * (or a success), never a 500 for the client's input, and the server must stay up and healthy.
 */
describe('OpenAPI under hostile input (real cdc server, etcd, upstream)', { timeout: 600_000 }, () => {
  const clusterId = uniqueName('apifuzz').replaceAll('_', '-');
  const cluster = new CdcServerGroup({ pd: etcdEndpoint(), clusterId, extraArgs: ['--upstream', mysqlUri('upstream')] });

  before(async () => {
    await requireService('etcd');
    await requireService('upstream');
    await cluster.start();
  });
  after(async () => {
    await cluster.stopAll();
    const etcd = new Etcd3({ hosts: etcdEndpoint() });
    await etcd.delete().prefix(`/tidb/cdc/${clusterId}/`);
    etcd.close();
  });

  it(`${CASES} mutated requests (seed ${SEED}): 4xx JSON or success, no 500 for input, no stack, the server stays up`, async () => {
    const server = cluster.newest();
    const random = seededRandom(SEED);
    const pick = (n: number): number => Math.floor(random() * n);
    const statuses = new Map<number, number>();
    const findings: string[] = [];
    const existing = 'fuzz-target';
    // one real changefeed, so the routes with an id also run on a changefeed that exists
    const created = await fetch(`${server.url}/api/v2/changefeeds`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ changefeed_id: existing, sink_uri: 'blackhole://', upstream: mysqlUri('upstream') }) });
    assert.equal(created.status, 201, await created.text());
    for (let c = 0; c < CASES; c++) {
      const [routeMethod, routePath] = ROUTES[pick(ROUTES.length)];
      const method = random() < 0.85 ? routeMethod : ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS', 'HEAD'][pick(7)];
      let path = routePath.replace(':id', () => (random() < 0.4 ? existing : ODD[pick(ODD.length)]));
      if (random() < 0.1) path += ['/', '//', '/x', '/..', '%2F', '?'][pick(6)];
      if (random() < 0.4) path += `${path.includes('?') ? '&' : '?'}${['namespace', 'state', 'overwrite_checkpoint_ts', ODD[pick(ODD.length)]][pick(4)]}=${ODD[pick(ODD.length)]}`;
      const text = method === 'GET' || method === 'HEAD' ? undefined : body(random);
      const what = `case ${c}: ${method} ${path.slice(0, 120)} ${text === undefined ? '' : text.slice(0, 160)}`;
      let res: Response;
      try {
        res = await fetch(`${server.url}${path}`, { method, signal: AbortSignal.timeout(30_000), ...(text === undefined ? {} : { body: text, headers: { 'content-type': 'application/json' } }) });
      } catch (error) {
        findings.push(`${what}: no answer (${(error as Error).name}: ${(error as Error).message})`);
        if (findings.length > 10) break;
        continue;
      }
      const answer = await res.text();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      if (/\n\s+at .+\(.+:\d+:\d+\)/.test(answer)) findings.push(`${what}: a stack in the answer: ${answer.slice(0, 300)}`);
      if (path.startsWith('/metrics') && res.ok) continue;
      if (method === 'HEAD') continue;
      let json: { error_code?: string; error_msg?: string } | undefined;
      try {
        json = JSON.parse(answer) as typeof json;
      } catch {
        findings.push(`${what}: HTTP ${res.status} with a non-JSON answer: ${answer.slice(0, 200)}`);
        continue;
      }
      if (!res.ok && (typeof json?.error_code !== 'string' || typeof json.error_msg !== 'string')) findings.push(`${what}: HTTP ${res.status} without error_code and error_msg: ${answer.slice(0, 200)}`);
      if (res.status >= 500 && res.status !== 503) findings.push(`${what}: HTTP ${res.status} ${answer.slice(0, 300)}`);
      if (json?.error_code === 'ErrBugIndicating') findings.push(`${what}: ErrBugIndicating: ${answer.slice(0, 300)}`);
    }
    console.log(`# ${CASES} requests, seed ${SEED}: statuses ${JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])))}`);
    // one finding per kind of answer (the same bug found by many requests is listed once)
    const kinds = new Map<string, string>();
    for (const f of findings) kinds.set(f.replace(/^case \d+: \S+ \S+ .*?: /, '').replace(/\d+/g, 'N').slice(0, 120), f);
    assert.deepEqual([...kinds.values()].slice(0, 15), [], `${findings.length} findings`);
    assert.equal(server.exitCode, undefined, 'the server is still running');
    const health = await fetch(`${server.url}/api/v2/health`);
    assert.equal(health.status, 200, 'the server is healthy after the run');
    assert.doesNotMatch(server.output.join(''), /uncaught|unhandled/i, 'no uncaught exception or unhandled rejection in the server log');
  });
});
