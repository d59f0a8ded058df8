import { mkdir } from 'node:fs/promises';
import { isIP } from 'node:net';
import { EtcdAuthenticationFailedError, EtcdPermissionDeniedError, type Etcd3, type IOptions } from 'etcd3';
import { buildInfo } from '../build-info/index.js';
import { Capture } from '../capture/capture.js';
import type { ServerConfig } from '../config/server-config.js';
import { TidemarkError } from '../errors/index.js';
import { withTimeout } from '../lifecycle/abortable.js';
import type { Logger } from '../logger/logger.js';
import { HttpApi, type ApiResult } from '../api/http-server.js';
import { ServerMetrics } from '../api/metrics.js';
import { captureCollector } from '../capture/metrics-collector.js';
import { ChangefeedAdmin } from '../api/changefeed-admin.js';
import { parseTs } from '../model/ts.js';
import type { AdminJob } from '../owner/owner.js';
import { SinkRegistry } from '../sink/registry.js';
import { positionTables, snapshotProgressOfRecord } from './table-progress.js';
import { mergeTablePages, pageOfTables, parseTableQuery, partQuery, tableQueryParams, type TablePage, type TableQuery } from '../api/table-page.js';
import { PeerServer } from '../p2p/peer-server.js';
import type { PortMux } from '../p2p/port-mux.js';
import { DEFAULT_NAMESPACE, clusterPrefix } from '../orchestrator/etcd-keys.js';
import { EtcdClient } from '../orchestrator/etcd-client.js';
import { requestText } from '../api/http-request.js';
import { clusterTlsError } from '../api/tls-errors.js';
import { ApiAuth } from '../api/auth.js';
import { loadClusterTls, type ClusterTls } from './tls.js';
import { clusterPort } from './cluster-port.js';
import { applyHeapGrowth, applyPretenuring } from './heap-tuning.js';
import type { CaptureSummary, ChangefeedSinkInfo, CreateChangefeedRequest, UpdateChangefeedRequest } from '../api/model.js';

export interface ServerOptions {
  readonly config: ServerConfig;
  readonly logger: Logger;
  /** How long to wait for etcd at start-up before giving up (the cluster may be starting too). */
  readonly etcdConnectTimeoutMs?: number;
  /** Sink schemes from the loaded plugins. */
  readonly sinks?: SinkRegistry;
}

/**
 * `cdc server`: one capture with its HTTP API (DESIGN §4, §7). `run(signal)` connects to etcd (failing
 * with ErrEtcdUnreachable after a bounded wait), listens on `addr` (ErrAddressInUse when taken), runs the
 * capture until `signal` aborts, then drains: stop serving, resign, deregister, revoke the lease, close.
 */
export class Server {
  readonly metrics: ServerMetrics;
  private capture: Capture | undefined;
  private readonly api: HttpApi;
  private stopping = false;
  private admin: ChangefeedAdmin | undefined;
  /** Capture-to-capture messages (gRPC), served on the same port as the OpenAPI. */
  readonly peers: PeerServer;
  private readonly mux: PortMux;
  /** The cluster's TLS (--ca --cert --key), undefined without it. */
  private readonly tls: ClusterTls | undefined;
  private readonly auth: ApiAuth;

  constructor(private readonly options: ServerOptions) {
    const security = options.config.security;
    this.metrics = new ServerMetrics({ perTable: options.config['per-table-metrics'] });
    this.metrics.onCollect(captureCollector(this.metrics, () => this.capture));
    this.tls = loadClusterTls(security);
    this.auth = new ApiAuth({ users: security['client-user-list'], reads: security['client-auth-reads'] });
    this.api = new HttpApi(options.logger);
    this.peers = new PeerServer(options.logger);
    this.mux = clusterPort({ api: this.api, peers: this.peers, tls: this.tls, auth: this.auth, logger: options.logger });
    this.api.onRequest = (route, status) => this.metrics.httpRequests.inc({ route, status: String(status) });
    this.api
      .route('GET', '/api/v2/status', () => Promise.resolve(this.status()))
      .route('GET', '/api/v2/health', () => Promise.resolve(this.health()))
      .route('GET', '/api/v2/captures', () => Promise.resolve({ body: this.captures() }))
      .route('POST', '/api/v2/owner/resign', (req) => this.resignOwner(req.headers['x-tidemark-forwarded'] !== undefined, req.headers.authorization))
      .route('POST', '/api/v2/changefeeds', async (_req, _p, body) => ({ status: 201, body: await this.changefeeds().create(requestObject<CreateChangefeedRequest>(body, ['changefeed_id', 'namespace', 'sink_uri', 'start_ts', 'target_ts', 'upstream'])) }))
      .route('GET', '/api/v2/changefeeds', (req) => {
        const query = new URL(req.url ?? '/', 'http://x').searchParams;
        const items = this.changefeeds().list(query.get('state') === 'all', query.get('namespace') ?? undefined);
        return Promise.resolve({ body: { total: items.length, items } });
      })
      .route('GET', '/api/v2/changefeeds/:id', (req, p) => Promise.resolve({ body: this.changefeeds().get(p['id'], namespaceOf(req.url)) }))
      .route('GET', '/api/v2/changefeeds/:id/tables', (req, p) => this.tablePage(p['id'], req.url, req.headers.authorization))
      .route('GET', '/api/v2/changefeeds/:id/sink', (req, p) => {
        // the sink's own counters on this capture (the blackhole's per-table counts); 404 when it does not run here
        const namespace = namespaceOf(req.url);
        const processor = this.capture?.processorManager?.processorOf(namespace, p['id']);
        if (processor === undefined) {
          throw new TidemarkError('ErrNotFound', `changefeed ${p['id']} has no processor on this capture (${this.capture?.id ?? 'not registered'})`);
        }
        const floors = processor.floors();
        const info: ChangefeedSinkInfo = { capture_id: this.capture?.id, checkpoint_ts: String(floors.checkpointTs), resolved_ts: String(floors.resolvedTs), spilled_bytes: processor.spilledBytes, spilled_total_bytes: processor.totalSpilledBytes, memory_used: processor.quota.used, memory_peak: processor.quota.peak, stats: processor.sinkStats() ?? null };
        return Promise.resolve({ body: info });
      })
      .route('PUT', '/api/v2/changefeeds/:id', async (req, p, body) => ({
        body: await this.changefeeds().update(p['id'], requestObject<UpdateChangefeedRequest>(body, ['sink_uri', 'target_ts']), namespaceOf(req.url)),
      }))
      .route('POST', '/api/v2/changefeeds/:id/pause', (req, p) =>
        this.ownerJob({ type: 'pause', id: p['id'], namespace: namespaceOf(req.url) }, req.url!, 'POST', undefined, req.headers['x-tidemark-forwarded'] !== undefined, req.headers.authorization),
      )
      .route('POST', '/api/v2/changefeeds/:id/resume', (req, p, body) => {
        const raw = (body as { overwrite_checkpoint_ts?: string | number } | undefined)?.overwrite_checkpoint_ts;
        const job: AdminJob = {
          type: 'resume',
          id: p['id'],
          namespace: namespaceOf(req.url),
          ...(raw === undefined || raw === '' || raw === 0 ? {} : { overwriteCheckpointTs: parseTs(String(raw), '--overwrite-checkpoint-ts') }),
        };
        // forwarded to the owner with the one field it reads, not whatever else the body held
        return this.ownerJob(job, req.url!, 'POST', raw === undefined ? undefined : { overwrite_checkpoint_ts: raw }, req.headers['x-tidemark-forwarded'] !== undefined, req.headers.authorization);
      })
      .route('DELETE', '/api/v2/changefeeds/:id', (req, p) =>
        this.ownerJob({ type: 'remove', id: p['id'], namespace: namespaceOf(req.url) }, req.url!, 'DELETE', undefined, req.headers['x-tidemark-forwarded'] !== undefined, req.headers.authorization),
      )
      .route('POST', '/api/v2/captures/:id/drain', (req, p) =>
        // TiCDC's drain: the owner moves the capture's tables away and schedules none there; poll until 0
        this.ownerJob({ type: 'drain', captureId: p['id'], namespace: DEFAULT_NAMESPACE, id: '' }, req.url!, 'POST', undefined, req.headers['x-tidemark-forwarded'] !== undefined, req.headers.authorization),
      )
      .route('GET', '/api/v2/processors', () => {
        const items = [...(this.capture?.state.changefeeds.values() ?? [])].flatMap((cf) =>
          [...cf.taskPositions.keys()].map((captureId) => ({ namespace: cf.namespace, changefeed_id: cf.id, capture_id: captureId })),
        );
        items.sort((a, b) => a.changefeed_id.localeCompare(b.changefeed_id) || a.capture_id.localeCompare(b.capture_id));
        return Promise.resolve({ body: { total: items.length, items } });
      })
      .route('GET', '/metrics', async () => ({ body: await this.metrics.scrape(), contentType: this.metrics.contentType }));
  }

  /** Graceful stop, first half: the capture hands ownership over and its tables move away (at most `timeoutMs`). */
  async drain(timeoutMs: number): Promise<void> {
    const capture = this.capture;
    if (capture === undefined || capture.liveness !== 'alive') return;
    const started = Date.now();
    const { tablesLeft } = await capture.drain(timeoutMs, AbortSignal.timeout(timeoutMs + 1000));
    this.options.logger.info('capture drained', { tablesLeft, ms: Date.now() - started });
  }

  async run(signal: AbortSignal): Promise<void> {
    const { config, logger } = this.options;
    const heap = applyHeapGrowth(config['heap-growth']);
    if (!heap.applied) logger.info('heap-growth left to node', { reason: heap.reason });
    const pretenuring = applyPretenuring();
    const endpoints = config.pd.split(',').map((s) => s.trim()).filter(Boolean);
    const client = new EtcdClient(this.etcdOptions(endpoints));
    if (config.security['etcd-user'] !== undefined && !endpoints.some((e) => /^https:\/\//i.test(e)) && !endpoints.every((e) => isLoopback(splitHostPort(e.replace(/^https?:\/\//i, '').replace(/\/$/, ''))[0]))) {
      logger.warn('the etcd password goes to etcd in plaintext: use https:// endpoints with --ca', { pd: config.pd, etcdUser: config.security['etcd-user'] });
    }
    try {
      await this.checkEtcd(client, endpoints);
      await mkdir(config['data-dir'], { recursive: true });
      const [host, port] = splitHostPort(config.addr);
      await this.mux.listen(host, port);
      const serving = this.tls?.serving === true;
      logger.info('cdc server listening', {
        addr: config.addr,
        pd: config.pd,
        clusterId: config['cluster-id'],
        version: buildInfo().version,
        tls: serving,
        clientCertificates: this.tls?.ca === undefined || !serving ? 'not checked' : this.tls.allowedCn.length > 0 ? `required, CN in ${this.tls.allowedCn.join(', ')}` : 'verified when presented',
        apiUsers: this.auth.enabled ? `required for writes${config.security['client-auth-reads'] ? ' and reads' : ''}` : 'none',
        heapGrowth: heap.applied ? config['heap-growth'] : 'node',
        pretenuring: pretenuring.applied ? 'off' : 'node',
      });
      if (!serving && !isLoopback(host)) {
        logger.warn('listening on a non-loopback address without TLS: the OpenAPI and the capture-to-capture channel are plaintext and anyone who can reach the port can use them', {
          addr: config.addr,
          fix: 'pass --cert and --key (and --ca, --cert-allowed-cn), set security.client-user-list, or listen on 127.0.0.1',
          apiUsers: this.auth.enabled,
        });
      }

      this.admin = new ChangefeedAdmin(client, config['cluster-id'], () => this.capture, this.options.sinks ?? new SinkRegistry(), config.upstream, this.options.logger);
      this.capture = new Capture({
        client,
        clusterId: config['cluster-id'],
        advertiseAddr: config['advertise-addr'] ?? config.addr,
        sessionTtl: config['capture-session-ttl'],
        logger,
        processors: { sinks: this.options.sinks ?? new SinkRegistry(), dataDir: config['data-dir'] },
        peers: this.peers,
        metrics: this.metrics,
      });
      const gauges = setInterval(() => this.updateGauges(), 1000);
      try {
        await this.capture.run(signal);
      } finally {
        clearInterval(gauges);
      }
    } finally {
      this.stopping = true;
      this.peers.close();
      await this.mux.close();
      await this.api.close();
      client.close();
      logger.info('cdc server stopped');
    }
  }

  /**
   * The etcd client's options: TLS with --ca/--cert/--key for https:// endpoints (all of them or none), and the
   * etcd user and password when given.
   */
  private etcdOptions(endpoints: readonly string[]): IOptions {
    const security = this.options.config.security;
    const secure = endpoints.filter((e) => /^https:\/\//i.test(e));
    if (secure.length > 0 && secure.length < endpoints.length) {
      throw new TidemarkError('ErrConfigInvalid', `--pd mixes https:// and plaintext etcd endpoints (${endpoints.join(',')}): use https:// for all of them or none`);
    }
    for (const e of endpoints) {
      if (/^[a-z][a-z0-9+.-]*:\/\//i.test(e) && !/^https?:\/\//i.test(e)) {
        throw new TidemarkError('ErrConfigInvalid', `invalid etcd endpoint "${e}" in --pd: the scheme must be http:// or https://`);
      }
    }
    const tls = this.tls;
    const user = security['etcd-user'];
    const password = security['etcd-password'];
    return {
      hosts: [...endpoints],
      dialTimeout: 3000,
      ...(secure.length > 0 && tls !== undefined
        ? {
            credentials: {
              rootCertificate: tls.ca === undefined ? (undefined as unknown as Buffer) : Buffer.from(tls.ca),
              ...(tls.key === undefined ? {} : { privateKey: Buffer.from(tls.key) }),
              ...(tls.cert === undefined ? {} : { certChain: Buffer.from(tls.cert) }),
            },
          }
        : {}),
      ...(user !== undefined && password !== undefined ? { auth: { username: user, password } } : {}),
    };
  }

  private async checkEtcd(client: Etcd3, endpoints: readonly string[]): Promise<void> {
    const timeout = this.options.etcdConnectTimeoutMs ?? 10_000;
    const security = this.options.config.security;
    try {
      await withTimeout(client.maintenance.status(), timeout, 'connecting to etcd');
      // the user must be allowed on the cluster's keys: a read of one of them says so now rather than later
      await withTimeout(client.get(clusterPrefix(this.options.config['cluster-id'])).string(), timeout, 'reading the cluster\'s keys in etcd');
    } catch (error) {
      client.close();
      const user = security['etcd-user'];
      if (error instanceof EtcdAuthenticationFailedError) {
        throw new TidemarkError('ErrEtcdAuthFailed', `etcd at --pd ${endpoints.join(',')} refused the etcd user "${user ?? ''}": unknown user or wrong password`, {
          hint: 'check --etcd-user (security.etcd-user) and the password in TIDEMARK_ETCD_PASSWORD (or security.etcd-password, --etcd-password)',
          details: { endpoints, user },
        });
      }
      if (error instanceof EtcdPermissionDeniedError) {
        throw new TidemarkError('ErrEtcdAuthFailed', `etcd at --pd ${endpoints.join(',')} denies ${user === undefined ? 'this client' : `the etcd user "${user}"`} access to the cluster's keys (${clusterPrefix(this.options.config['cluster-id'])})`, {
          hint: `grant the user's role readwrite on the prefix /tidb/cdc/ (etcdctl role grant-permission <role> --prefix=true readwrite /tidb/cdc/)`,
          details: { endpoints, user },
        });
      }
      if (/user name is empty|authentication is not enabled|auth.*not enabled/i.test((error as Error).message) && user === undefined) {
        throw new TidemarkError('ErrEtcdAuthFailed', `etcd at --pd ${endpoints.join(',')} requires authentication: ${(error as Error).message}`, {
          hint: 'pass --etcd-user and set TIDEMARK_ETCD_PASSWORD (or security.etcd-user / etcd-password in the server config)',
          details: { endpoints },
        });
      }
      const secure = endpoints.some((e) => /^https:\/\//i.test(e));
      const tlsError = clusterTlsError(error, { where: `etcd at ${endpoints.join(',')}`, caPath: this.tls?.caPath, caFlag: '--ca', secure });
      if (tlsError !== undefined) throw tlsError;
      throw new TidemarkError('ErrEtcdUnreachable', `cannot reach etcd at --pd ${endpoints.join(',')}: ${(error as Error).message}`, {
        hint: secure ? 'start etcd, fix --pd, or check --ca/--cert/--key against etcd\'s TLS settings' : 'start etcd (bash scripts/services.sh up etcd) or fix --pd; an etcd that serves TLS needs https:// endpoints and --ca',
        details: { endpoints },
        cause: error,
      });
    }
  }

  private updateGauges(): void {
    this.metrics.isOwner.set(this.capture?.isOwner ? 1 : 0);
    this.metrics.capturesAlive.set(this.capture?.state.captures.size ?? 0);
  }

  private status(): ApiResult {
    const capture = this.capture;
    return {
      body: {
        version: buildInfo().version,
        git_hash: '',
        id: capture?.id ?? '',
        cluster_id: this.options.config['cluster-id'],
        pid: process.pid,
        is_owner: capture?.isOwner ?? false,
        liveness: this.stopping || capture?.liveness === 'stopping' ? 1 : 0,
      },
    };
  }

  private health(): ApiResult {
    const capture = this.capture;
    if (capture === undefined || capture.liveness !== 'alive') {
      throw new TidemarkError('ErrClusterUnhealthy', `this capture is ${capture?.liveness ?? 'starting'}`);
    }
    if (capture.state.ownerCaptureId === undefined) throw new TidemarkError('ErrClusterUnhealthy', 'the cluster has no owner yet');
    return { body: {} };
  }

  captures(): { total: number; items: CaptureSummary[] } {
    const capture = this.capture;
    if (capture === undefined) return { total: 0, items: [] };
    const owner = capture.state.ownerCaptureId;
    const items = [...capture.state.captures.values()]
      .map((info) => ({ id: info.id, is_owner: info.id === owner, address: info.address, cluster_id: this.options.config['cluster-id'] }))
      .sort((a, b) => Number(b.is_owner) - Number(a.is_owner) || a.address.localeCompare(b.address));
    return { total: items.length, items };
  }

  private changefeeds(): ChangefeedAdmin {
    if (this.admin === undefined) throw new TidemarkError('ErrClusterUnhealthy', 'this capture is still starting');
    return this.admin;
  }

  /**
   * A request to another capture's API (the owner's), as the client asked it: https with the cluster's certificates
   * when this server serves TLS, and the client's own Authorization header.
   */
  private async toCapture(address: string, method: string, path: string, body: unknown, authorization: string | undefined, timeoutMs: number, who = 'the owner capture'): Promise<ApiResult> {
    const scheme = this.tls?.serving === true ? 'https' : 'http';
    const url = new URL(path, `${scheme}://${address}`);
    let answer;
    try {
      answer = await requestText({
        method,
        url,
        headers: {
          'x-tidemark-forwarded': '1',
          'content-type': 'application/json',
          ...(authorization === undefined ? {} : { authorization }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        signal: AbortSignal.timeout(timeoutMs),
        tls: this.tls,
      });
    } catch (error) {
      throw clusterTlsError(error, { where: `${who} at ${url.origin}`, caPath: this.tls?.caPath, caFlag: '--ca', secure: scheme === 'https' }) ??
        new TidemarkError('ErrOwnerNotFound', `cannot reach ${who} at ${url.origin} (${(error as { code?: string }).code ?? (error as Error).message}); try again`, { cause: error });
    }
    let json: unknown;
    try {
      json = JSON.parse(answer.text);
    } catch {
      throw new TidemarkError('ErrOwnerNotFound', `${who} at ${url.origin} answered ${method} ${url.pathname} with non-JSON (HTTP ${answer.status})`);
    }
    return { status: answer.status, body: json };
  }

  /**
   * One page of a changefeed's tables (`?limit=&after=&offset=&sort=&state=&min-lag-ms=&filter=`): each capture
   * with a processor of the changefeed lists its own tables from the processor (`local=true` asks one capture for
   * its part), and the parts are merged here. A capture that does not answer is read from its task position in
   * etcd instead (the 200 tables furthest behind there) and named under `partial`.
   */
  private async tablePage(id: string, requestUrl: string | undefined, authorization: string | undefined): Promise<ApiResult> {
    const params = new URL(requestUrl ?? '/', 'http://x').searchParams;
    const q = parseTableQuery(params);
    const detail = this.changefeeds().get(id, namespaceOf(requestUrl));
    const capture = this.capture;
    const now = Date.now();
    const here = (query: TableQuery): TablePage => {
      const processor = capture?.processorManager?.processorOf(detail.namespace, detail.id);
      const own = capture?.id ?? '';
      return pageOfTables(processor === undefined ? [] : processor.progress.tables(now).map((t) => ({ ...t, capture_id: own })), query, now);
    };
    if (params.get('local') === 'true') return { body: here(q) };
    const cf = capture?.state.changefeeds.get(`${detail.namespace}/${detail.id}`);
    const holders = new Set(cf?.taskPositions.keys() ?? []);
    const self = capture?.id;
    if (self !== undefined && capture?.processorManager?.processorOf(detail.namespace, detail.id) !== undefined) holders.add(self);
    const part = partQuery(q);
    const partial: string[] = [];
    const parts = await Promise.all(
      [...holders].map(async (captureId): Promise<TablePage> => {
        if (captureId === self) return here(part);
        const address = capture?.state.captures.get(captureId)?.address;
        try {
          if (address === undefined) throw new Error('not in the cluster');
          const query = tableQueryParams(part);
          query.set('namespace', detail.namespace);
          query.set('local', 'true');
          const answer = await this.toCapture(address, 'GET', `/api/v2/changefeeds/${encodeURIComponent(detail.id)}/tables?${query.toString()}`, undefined, authorization, 5000, `capture ${captureId}`);
          if (answer.status !== 200) throw new Error(`HTTP ${answer.status}: ${JSON.stringify(answer.body).slice(0, 200)}`);
          return answer.body as TablePage;
        } catch (error) {
          this.options.logger.warn('a capture did not list its tables; using its task position in etcd', { capture: captureId, changefeed: detail.id, error: (error as Error).message });
          partial.push(captureId);
          return pageOfTables(positionTables(captureId, cf?.taskPositions.get(captureId)), part, now);
        }
      }),
    );
    const page = mergeTablePages(parts, q, now);
    // a table not being copied now shows its snapshot's state from its record in etcd
    const items = page.items.map((t) => {
      const fromRecord = t.snapshot === undefined ? snapshotProgressOfRecord(cf?.snapshots.get(t.table)) : undefined;
      return fromRecord === undefined ? t : { ...t, snapshot: fromRecord };
    });
    return { body: { ...page, items, ...(partial.length === 0 ? {} : { partial }) } };
  }

  /** Runs an admin job on the owner: here when this capture is the owner, otherwise forwarded to it. */
  private async ownerJob(job: AdminJob, path: string, method: string, body: unknown, forwarded: boolean, authorization?: string): Promise<ApiResult> {
    if (job.type === 'drain') {
      if (await this.changefeeds().runOwnerJob(job)) {
        return { status: 202, body: { current_table_count: this.capture?.owner?.tablesOn(job.captureId) ?? 0 } };
      }
    } else if (await this.changefeeds().runOwnerJob(job)) {
      return { status: 202, body: job.type === 'remove' ? { id: job.id } : this.changefeeds().get(job.id, job.namespace) };
    }
    if (forwarded) throw new TidemarkError('ErrNotOwner', 'this capture is not the owner');
    return this.forwardToOwner(method, path, body, authorization);
  }

  private async forwardToOwner(method: string, path: string, body: unknown, authorization: string | undefined): Promise<ApiResult> {
    const capture = this.capture;
    const ownerId = capture?.state.ownerCaptureId;
    const owner = ownerId === undefined ? undefined : capture?.state.captures.get(ownerId);
    if (owner === undefined) throw new TidemarkError('ErrOwnerNotFound', 'the cluster has no owner right now; try again');
    return this.toCapture(owner.address, method, path, body, authorization, 20_000);
  }

  /** Resigns if this capture is the owner; otherwise forwards to the owner's API. */
  private async resignOwner(forwarded: boolean, authorization?: string): Promise<ApiResult> {
    const capture = this.capture;
    if (capture?.resignOwner()) return { status: 202, body: {} };
    if (forwarded) throw new TidemarkError('ErrNotOwner', 'this capture is not the owner');
    const ownerId = capture?.state.ownerCaptureId;
    const owner = ownerId === undefined ? undefined : capture?.state.captures.get(ownerId);
    if (owner === undefined) throw new TidemarkError('ErrOwnerNotFound', 'the cluster has no owner right now; try again');
    return this.toCapture(owner.address, 'POST', '/api/v2/owner/resign', undefined, authorization, 5000);
  }
}

/** A JSON request body that must be an object (absent = empty). */
/** A request body as the object its route takes: a JSON object whose `strings` fields are strings when present. */
function requestObject<T extends object>(body: unknown, strings: readonly (keyof T & string)[]): T {
  if (body === undefined) return {} as T;
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new TidemarkError('ErrInvalidArgument', `the request body must be a JSON object, not ${Array.isArray(body) ? 'an array' : body === null ? 'null' : typeof body}`);
  }
  for (const field of strings) {
    const value = (body as Record<string, unknown>)[field];
    if (value !== undefined && typeof value !== 'string') {
      throw new TidemarkError('ErrInvalidArgument', `${field} in the request body must be a string, not ${Array.isArray(value) ? 'an array' : value === null ? 'null' : typeof value}`);
    }
  }
  return body as T;
}

function namespaceOf(url: string | undefined): string {
  return new URL(url ?? '/', 'http://x').searchParams.get('namespace') ?? DEFAULT_NAMESPACE;
}

/** 127.0.0.0/8, ::1 and localhost: an address only this machine reaches. */
export function isLoopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '').toLowerCase();
  if (h === 'localhost' || h === '::1') return true;
  return isIP(h) === 4 && h.startsWith('127.');
}

export function splitHostPort(addr: string): [string, number] {
  const colon = addr.lastIndexOf(':');
  return [addr.slice(0, colon), Number(addr.slice(colon + 1))];
}
