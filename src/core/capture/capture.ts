import { randomUUID } from 'node:crypto';
import type { Etcd3, Lease } from 'etcd3';
import { TidemarkError, isAbortError } from '../errors/index.js';
import { sleep, withTimeout } from '../lifecycle/abortable.js';
import type { Logger } from '../logger/logger.js';
import { captureKey, clusterPrefix } from '../orchestrator/etcd-keys.js';
import { EtcdWorker } from '../orchestrator/etcd-worker.js';
import { GlobalReactorState, type CaptureInfo } from '../orchestrator/global-state.js';
import { Owner } from '../owner/owner.js';
import { ProcessorManager, type ProcessorManagerOptions } from '../processor/processor-manager.js';
import { EtcdSchemaStore } from '../orchestrator/schema-store.js';
import { buildInfo } from '../build-info/index.js';
import { OwnerElection } from './owner-election.js';
import { Messenger } from '../p2p/messenger.js';
import type { PeerServer } from '../p2p/peer-server.js';
import type { TidemarkMetrics } from '../metrics/metrics.js';
import { LogService } from '../logservice/log-service.js';
import { SchemaStorage } from '../schema/schema-storage.js';

export interface CaptureOptions {
  readonly client: Etcd3;
  readonly clusterId: string;
  /** host:port other captures and the CLI reach this capture's API on. */
  readonly advertiseAddr: string;
  /** Session lease TTL in seconds (TiCDC: capture-session-ttl, 10). */
  readonly sessionTtl?: number;
  readonly tickIntervalMs?: number;
  readonly logger: Logger;
  /** What processors need (sink plugins, data dir); without it the capture runs no processors (tests of the cluster alone). */
  readonly processors?: Omit<ProcessorManagerOptions, 'logger'>;
  /** The server's capture-to-capture gRPC endpoint (scheduling messages); with `processors`, tables are scheduled. */
  readonly peers?: PeerServer;
  /** The server's metrics, handed to the parts that count (never a global registry: a test runs many servers). */
  readonly metrics?: TidemarkMetrics;
}

export type CaptureLiveness = 'starting' | 'alive' | 'stopping' | 'stopped';

/**
 * One `cdc server` process in the cluster (DESIGN §4, the seed's capture.go). Each round of `run` is one
 * incarnation: a new capture id and an etcd session lease, the capture key registered under that lease,
 * the processor manager's EtcdWorker and the owner campaign. Losing the session is suicide: everything
 * of that incarnation is closed and a new one starts, with a new id. When `run`'s signal aborts, the
 * capture resigns, deregisters and revokes its lease explicitly before resolving.
 */
export class Capture {
  liveness: CaptureLiveness = 'starting';
  info: CaptureInfo | undefined;
  isOwner = false;
  /** The cluster as this capture's processor manager sees it (any capture can answer for the cluster). */
  state: GlobalReactorState;
  owner: Owner | undefined;
  processorManager: ProcessorManager | undefined;
  /** One binlog read per upstream for this capture's processors and owner (made per incarnation). */
  logService: LogService | undefined;
  /** Incarnations so far (1 + session losses). */
  incarnations = 0;
  private resignController: AbortController | undefined;
  private messenger: Messenger | undefined;
  /** A graceful stop is under way: heartbeats say so and the owner moves the tables away. */
  draining = false;
  private election: OwnerElection | undefined;

  constructor(private readonly options: CaptureOptions) {
    this.state = new GlobalReactorState(options.clusterId);
  }

  get id(): string | undefined {
    return this.info?.id;
  }

  /** Runs incarnations until `signal` aborts; never rejects for a lost session, only for bugs. */
  async run(signal: AbortSignal): Promise<void> {
    let backoffMs = 500;
    while (!signal.aborted) {
      const started = Date.now();
      try {
        await this.runIncarnation(signal);
      } catch (error) {
        if (signal.aborted) break;
        if (error instanceof TidemarkError && !error.retryable) throw error;
        this.options.logger.warn('capture lost its session or failed; restarting as a new capture', {
          captureId: this.info?.id,
          error,
        });
      }
      if (signal.aborted) break;
      backoffMs = Date.now() - started > 30_000 ? 500 : Math.min(backoffMs * 2, 10_000);
      await sleep(backoffMs, signal).catch(() => undefined);
    }
    this.liveness = 'stopped';
  }

  /**
   * Graceful stop, first half (DESIGN §4): hand ownership over if this capture has it, say "draining" in
   * heartbeats so the owner moves every table away, and wait until none is left here (or `timeoutMs`, or no
   * other capture is alive to take them). The caller then aborts `run`.
   */
  async drain(timeoutMs: number, signal: AbortSignal): Promise<{ tablesLeft: number }> {
    this.draining = true;
    if (this.processorManager !== undefined) this.processorManager.draining = true;
    const deadline = Date.now() + timeoutMs;
    const others = (): number => [...this.state.captures.keys()].filter((id) => id !== this.info?.id).length;
    if (this.isOwner && others() > 0) this.resignOwner();
    while (Date.now() < deadline && !signal.aborted) {
      const left = this.processorManager?.tableCount ?? 0;
      if (left === 0 || others() === 0) return { tablesLeft: left };
      await sleep(200, signal).catch(() => undefined);
    }
    return { tablesLeft: this.processorManager?.tableCount ?? 0 };
  }

  /** Makes this capture give up ownership; another capture (or this one, later) wins the next election. */
  resignOwner(): boolean {
    if (!this.isOwner || this.resignController === undefined) return false;
    this.resignController.abort(new TidemarkError('ErrNotOwner', 'the owner resigned on request'));
    return true;
  }

  private async runIncarnation(signal: AbortSignal): Promise<void> {
    const { client, clusterId, logger } = this.options;
    const ttl = this.options.sessionTtl ?? 10;
    this.state = new GlobalReactorState(clusterId, (key, error) => logger.warn('an etcd record does not decode: it is ignored until it is fixed or removed', { key, error }));
    this.incarnations++;
    const session = new AbortController();
    const sessionSignal = AbortSignal.any([signal, session.signal]);
    const lease: Lease = client.lease(ttl);
    lease.on('lost', (error: Error) => {
      session.abort(new TidemarkError('ErrCaptureSuicide', `etcd session lease lost: ${error.message}`, { cause: error }));
    });
    let leaseId: string;
    try {
      leaseId = await withTimeout(lease.grant(), 10_000, 'granting the capture session lease');
    } catch (error) {
      lease.release();
      throw new TidemarkError('ErrEtcdUnreachable', `cannot open an etcd session: ${String((error as Error).message)}`, { cause: error });
    }

    const info: CaptureInfo = {
      id: randomUUID(),
      address: this.options.advertiseAddr,
      version: buildInfo().version,
      pid: process.pid,
      'start-timestamp': Math.floor(Date.now() / 1000),
    };
    this.info = info;
    const log = logger.with({ captureId: info.id });
    const key = captureKey(clusterId, info.id);
    try {
      await lease.put(key).value(JSON.stringify(info));
      this.liveness = 'alive';
      log.info('capture registered', { address: info.address, leaseId });

      this.options.metrics?.captureIncarnations.inc();
      this.messenger = this.options.peers && new Messenger(info.id, this.options.peers, log, this.options.metrics);
      const logService = new LogService({ captureId: info.id, logger: log.with({ role: 'log service' }), definitions: (upstream) => SchemaStorage.upstreamLoader(upstream) });
      this.logService = logService;
      this.processorManager = new ProcessorManager(
        info.id,
        this.options.processors && { ...this.options.processors, logger: log, schemaStore: this.schemaStore(), logService, ...(this.options.metrics === undefined ? {} : { metrics: this.options.metrics }) },
        this.messenger,
      );
      this.processorManager.draining = this.draining;
      const processorWorker = new EtcdWorker({
        client,
        prefix: clusterPrefix(clusterId),
        reactor: this.processorManager,
        state: this.state,
        logger: log,
        ...(this.options.metrics === undefined ? {} : { metrics: { txnDuration: this.options.metrics.etcdTxnDuration, txnConflicts: this.options.metrics.etcdTxnConflicts } }),
        ...(this.options.tickIntervalMs === undefined ? {} : { tickIntervalMs: this.options.tickIntervalMs }),
      });
      this.election = new OwnerElection(client, clusterId, leaseId, info.id);
      const failed = new Promise<never>((_, reject) => {
        sessionSignal.addEventListener('abort', () => reject(sessionSignal.reason as Error), { once: true });
      });
      failed.catch(() => undefined);
      await Promise.race([
        processorWorker.run(sessionSignal).then(() => {
          if (!signal.aborted) throw new TidemarkError('ErrCaptureSuicide', 'processor manager stopped');
        }),
        this.campaignLoop(sessionSignal, log),
        failed,
      ]);
    } catch (error) {
      // an abort of `signal` is a requested stop; anything else ends this incarnation
      if (!signal.aborted || !isAbortError(error)) {
        if (!signal.aborted) throw error;
      }
    } finally {
      session.abort(new TidemarkError('ErrAborted', 'capture incarnation ended'));
      await this.processorManager?.close();
      this.messenger?.close();
      this.messenger = undefined;
      this.liveness = signal.aborted ? 'stopping' : 'starting';
      await this.deregister(lease, key, log);
      this.isOwner = false;
    }
  }

  /** Changefeed schema storages (upstreams without binlog_row_metadata=FULL) live in this cluster's etcd. */
  private schemaStore(): EtcdSchemaStore {
    return new EtcdSchemaStore(this.options.client, this.options.clusterId);
  }

  private async campaignLoop(signal: AbortSignal, log: Logger): Promise<void> {
    const { client, clusterId } = this.options;
    const election = this.election!;
    while (!signal.aborted) {
      await election.campaign(signal);
      const resign = new AbortController();
      this.resignController = resign;
      const ownerSignal = AbortSignal.any([signal, resign.signal]);
      const sinks = this.options.processors?.sinks;
      this.owner = new Owner(this.info!.id, this.messenger !== undefined && sinks !== undefined ? { messenger: this.messenger, sinks, logger: log, schemaStore: this.schemaStore(), ...(this.logService === undefined ? {} : { logService: this.logService }), ...(this.options.metrics === undefined ? {} : { metrics: this.options.metrics }) } : undefined);
      this.isOwner = true;
      log.info('campaign won: this capture is the owner');
      const ownerWorker = new EtcdWorker({
        client,
        prefix: clusterPrefix(clusterId),
        reactor: this.owner,
        state: new GlobalReactorState(clusterId),
        logger: log.with({ role: 'owner' }),
        ...(this.options.metrics === undefined
          ? {}
          : { metrics: { txnDuration: this.options.metrics.etcdTxnDuration, txnConflicts: this.options.metrics.etcdTxnConflicts, tickDuration: this.options.metrics.ownerTickDuration } }),
        ...(this.options.tickIntervalMs === undefined ? {} : { tickIntervalMs: this.options.tickIntervalMs }),
      });
      try {
        await ownerWorker.run(ownerSignal);
      } catch (error) {
        if (!(error instanceof TidemarkError && error.code === 'ErrNotOwner')) throw error;
        log.warn('owner stopped: no longer the owner', { error });
      } finally {
        this.isOwner = false;
        this.resignController = undefined;
        this.owner.abandonJobs(new TidemarkError('ErrNotOwner', 'the owner stepped down before the job was applied; try again'));
        await this.owner.close();
      }
      if (signal.aborted) return;
      if (resign.signal.aborted) log.info('owner resigned');
      await election.resign().catch(() => undefined);
      await sleep(1000, signal); // campaign at most once a second (TiCDC)
    }
  }

  /** Resign, delete the capture key and revoke the lease, each bounded, so the cluster sees us gone at once. */
  private async deregister(lease: Lease, key: string, log: Logger): Promise<void> {
    const steps: [string, () => Promise<unknown>][] = [
      ['resign', () => this.election?.resign() ?? Promise.resolve()],
      ['delete capture key', () => this.options.client.delete().key(key).exec()],
      ['revoke lease', () => lease.revoke()],
    ];
    for (const [what, step] of steps) {
      try {
        await withTimeout(step(), 3000, what);
      } catch (error) {
        log.debug(`deregistration step failed: ${what}`, { error });
      }
    }
    lease.release();
    this.election = undefined;
    log.info('capture deregistered');
  }
}
