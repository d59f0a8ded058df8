import { mkdir } from 'node:fs/promises';
import type { Etcd3 } from 'etcd3';
import { buildInfo } from '../build-info/index.js';
import { Capture } from '../capture/capture.js';
import type { ServerConfig } from '../config/server-config.js';
import { TidemarkError } from '../errors/index.js';
import { withTimeout } from '../lifecycle/abortable.js';
import type { Logger } from '../logger/logger.js';
import { HttpApi, type ApiResult } from '../api/http-server.js';
import { ServerMetrics } from '../api/metrics.js';
import { captureCollector } from '../capture/metrics-collector.js';
import { ChangefeedAdmin, type CreateChangefeedRequest, type UpdateChangefeedRequest } from '../owner/changefeed-admin.js';
import { parseTs } from '../model/ts.js';
import type { AdminJob } from '../owner/owner.js';
import { SinkRegistry } from '../sink/registry.js';
import { tableProgressOf } from './table-progress.js';
import { PeerServer } from '../p2p/peer-server.js';
import { PortMux } from '../p2p/port-mux.js';
import { DEFAULT_NAMESPACE } from '../orchestrator/etcd-keys.js';
import { EtcdClient } from '../orchestrator/etcd-client.js';

export interface ServerOptions {
  readonly config: ServerConfig;
  readonly logger: Logger;
  /** How long to wait for etcd at start-up before giving up (the cluster may be starting too). */
  readonly etcdConnectTimeoutMs?: number;
  /** Sink schemes from the loaded plugins. */
  readonly sinks?: SinkRegistry;
}

export interface CaptureSummary {
  readonly id: string;
  readonly is_owner: boolean;
  readonly address: string;
  readonly cluster_id: string;
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

  constructor(private readonly options: ServerOptions) {
    this.metrics = new ServerMetrics({ perTable: options.config['per-table-metrics'] });
    this.metrics.onCollect(captureCollector(this.metrics, () => this.capture));
    this.api = new HttpApi(options.logger);
    this.peers = new PeerServer(options.logger);
    this.mux = new PortMux({ http: this.api.server, grpc: this.peers.injector() });
    this.api.onRequest = (route, status) => this.metrics.httpRequests.inc({ route, status: String(status) });
    this.api
      .route('GET', '/api/v2/status', () => Promise.resolve(this.status()))
      .route('GET', '/api/v2/health', () => Promise.resolve(this.health()))
      .route('GET', '/api/v2/captures', () => Promise.resolve({ body: this.captures() }))
      .route('POST', '/api/v2/owner/resign', (req) => this.resignOwner(req.headers['x-tidemark-forwarded'] !== undefined))
      .route('POST', '/api/v2/changefeeds', async (_req, _p, body) => ({ status: 201, body: await this.changefeeds().create(requestObject<CreateChangefeedRequest>(body, ['changefeed_id', 'namespace', 'sink_uri', 'start_ts', 'target_ts', 'upstream'])) }))
      .route('GET', '/api/v2/changefeeds', (req) => {
        const query = new URL(req.url ?? '/', 'http://x').searchParams;
        const items = this.changefeeds().list(query.get('state') === 'all', query.get('namespace') ?? undefined);
        return Promise.resolve({ body: { total: items.length, items } });
      })
      .route('GET', '/api/v2/changefeeds/:id', (req, p) => Promise.resolve({ body: this.changefeeds().get(p['id'], namespaceOf(req.url)) }))
      .route('GET', '/api/v2/changefeeds/:id/tables', (req, p) => {
        const detail = this.changefeeds().get(p['id'], namespaceOf(req.url));
        const cf = this.capture?.state.changefeeds.get(`${detail.namespace}/${detail.id}`);
        const items = tableProgressOf(cf?.taskPositions ?? new Map(), cf?.snapshots);
        return Promise.resolve({ body: { total: items.length, items } });
      })
      .route('GET', '/api/v2/changefeeds/:id/sink', (req, p) => {
        // the sink's own counters on this capture (the blackhole's per-table counts); 404 when it does not run here
        const namespace = namespaceOf(req.url);
        const processor = this.capture?.processorManager?.processorOf(namespace, p['id']);
        if (processor === undefined) {
          throw new TidemarkError('ErrNotFound', `changefeed ${p['id']} has no processor on this capture (${this.capture?.id ?? 'not registered'})`);
        }
        return Promise.resolve({ body: { capture_id: this.capture?.id, checkpoint_ts: String(processor.checkpointTs), resolved_ts: String(processor.resolvedTs), spilled_bytes: processor.spilledBytes, spilled_total_bytes: processor.totalSpilledBytes, memory_used: processor.quota.used, memory_peak: processor.quota.peak, stats: processor.sinkStats() ?? null } });
      })
      .route('PUT', '/api/v2/changefeeds/:id', async (req, p, body) => ({
        body: await this.changefeeds().update(p['id'], requestObject<UpdateChangefeedRequest>(body, ['sink_uri', 'target_ts']), namespaceOf(req.url)),
      }))
      .route('POST', '/api/v2/changefeeds/:id/pause', (req, p) =>
        this.ownerJob({ type: 'pause', id: p['id'], namespace: namespaceOf(req.url) }, req.url!, 'POST', undefined, req.headers['x-tidemark-forwarded'] !== undefined),
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
        return this.ownerJob(job, req.url!, 'POST', raw === undefined ? undefined : { overwrite_checkpoint_ts: raw }, req.headers['x-tidemark-forwarded'] !== undefined);
      })
      .route('DELETE', '/api/v2/changefeeds/:id', (req, p) =>
        this.ownerJob({ type: 'remove', id: p['id'], namespace: namespaceOf(req.url) }, req.url!, 'DELETE', undefined, req.headers['x-tidemark-forwarded'] !== undefined),
      )
      .route('POST', '/api/v2/captures/:id/drain', (req, p) =>
        // TiCDC's drain: the owner moves the capture's tables away and schedules none there; poll until 0
        this.ownerJob({ type: 'drain', captureId: p['id'], namespace: DEFAULT_NAMESPACE, id: '' }, req.url!, 'POST', undefined, req.headers['x-tidemark-forwarded'] !== undefined),
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
    const endpoints = config.pd.split(',').map((s) => s.trim()).filter(Boolean);
    const client = new EtcdClient({ hosts: endpoints, dialTimeout: 3000 });
    try {
      await this.checkEtcd(client, endpoints);
      await mkdir(config['data-dir'], { recursive: true });
      const [host, port] = splitHostPort(config.addr);
      await this.mux.listen(host, port);
      logger.info('cdc server listening', { addr: config.addr, pd: config.pd, clusterId: config['cluster-id'], version: buildInfo().version });

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

  private async checkEtcd(client: Etcd3, endpoints: readonly string[]): Promise<void> {
    const timeout = this.options.etcdConnectTimeoutMs ?? 10_000;
    try {
      await withTimeout(client.maintenance.status(), timeout, 'connecting to etcd');
    } catch (error) {
      client.close();
      throw new TidemarkError('ErrEtcdUnreachable', `cannot reach etcd at --pd ${endpoints.join(',')}: ${(error as Error).message}`, {
        hint: 'start etcd (bash scripts/services.sh up etcd) or fix --pd',
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

  /** Runs an admin job on the owner: here when this capture is the owner, otherwise forwarded to it. */
  private async ownerJob(job: AdminJob, path: string, method: string, body: unknown, forwarded: boolean): Promise<ApiResult> {
    if (job.type === 'drain') {
      if (await this.changefeeds().runOwnerJob(job)) {
        return { status: 202, body: { current_table_count: this.capture?.owner?.tablesOn(job.captureId) ?? 0 } };
      }
    } else if (await this.changefeeds().runOwnerJob(job)) {
      return { status: 202, body: job.type === 'remove' ? { id: job.id } : this.changefeeds().get(job.id, job.namespace) };
    }
    if (forwarded) throw new TidemarkError('ErrNotOwner', 'this capture is not the owner');
    return this.forwardToOwner(method, path, body);
  }

  private async forwardToOwner(method: string, path: string, body: unknown): Promise<ApiResult> {
    const capture = this.capture;
    const ownerId = capture?.state.ownerCaptureId;
    const owner = ownerId === undefined ? undefined : capture?.state.captures.get(ownerId);
    if (owner === undefined) throw new TidemarkError('ErrOwnerNotFound', 'the cluster has no owner right now; try again');
    const res = await fetch(`http://${owner.address}${path}`, {
      method,
      headers: { 'x-tidemark-forwarded': '1', 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(20_000),
    });
    return { status: res.status, body: (await res.json()) };
  }

  /** Resigns if this capture is the owner; otherwise forwards to the owner's API. */
  private async resignOwner(forwarded: boolean): Promise<ApiResult> {
    const capture = this.capture;
    if (capture?.resignOwner()) return { status: 202, body: {} };
    if (forwarded) throw new TidemarkError('ErrNotOwner', 'this capture is not the owner');
    const ownerId = capture?.state.ownerCaptureId;
    const owner = ownerId === undefined ? undefined : capture?.state.captures.get(ownerId);
    if (owner === undefined) throw new TidemarkError('ErrOwnerNotFound', 'the cluster has no owner right now; try again');
    const res = await fetch(`http://${owner.address}/api/v2/owner/resign`, {
      method: 'POST',
      headers: { 'x-tidemark-forwarded': '1' },
      signal: AbortSignal.timeout(5000),
    });
    return { status: res.status, body: (await res.json()) };
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

export function splitHostPort(addr: string): [string, number] {
  const colon = addr.lastIndexOf(':');
  return [addr.slice(0, colon), Number(addr.slice(colon + 1))];
}
