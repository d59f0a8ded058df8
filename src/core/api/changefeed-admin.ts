import type { UpstreamRecord } from '../model/upstream.js';
import { sinkError } from '../sink/endpoint.js';
import { randomUUID } from 'node:crypto';
import { decodeRecord, changefeedInfoRecord } from '../orchestrator/records.js';
import type { Etcd3 } from 'etcd3';
import { buildInfo } from '../build-info/index.js';
import type { Capture } from '../capture/capture.js';
import { parseReplicaConfig, parseStoredReplicaConfig, replicaConfigToInput, type ReplicaConfig } from '../config/replica-config.js';
import { silentLogger, type Logger } from '../logger/logger.js';
import type { Sink } from '../sink/api.js';
import { readSchemaSnapshot, writeSchemaSnapshot } from '../snapshot/schema-snapshot.js';
import { checkSnapshotSupport } from '../snapshot/snapshot-reader.js';
import { pendingRecord } from '../snapshot/progress.js';
import type { QualifiedName } from '../schema/ddl.js';
import { TidemarkError } from '../errors/index.js';
import { AdminJobType, CHANGEFEED_ID_PATTERN, FEED_STATES, type ChangefeedInfo, type ChangefeedStatus } from '../model/changefeed.js';
import { DEFAULT_NAMESPACE, changefeedInfoKey, changefeedSnapshotKey, upstreamKey } from '../orchestrator/etcd-keys.js';
import type { SinkRegistry } from '../sink/registry.js';
import { hasFullRowMetadata } from '../upstream/preflight.js';
import { replicaServerId, type ResumableReaderOptions } from '../upstream/resumable-reader.js';
import { Upstream } from '../upstream/upstream.js';
import { extendChangefeedSchema, takeChangefeedSchema } from '../schema/schema-store.js';
import { EtcdSchemaStore } from '../orchestrator/schema-store.js';
import { TableFilter } from '../config/table-filter.js';
import { parseTimeForm, tsAtTime } from '../upstream/ts-at-time.js';
import { formatCoordinate, parseTs, type Ts } from '../model/ts.js';
import { redactUri } from '../config/uri.js';
import type { AdminJob } from '../owner/owner.js';
import { snapshotSummaryOf } from './snapshot-summary.js';
import type { ChangefeedDetail, ChangefeedSummary, CreateChangefeedRequest, UpdateChangefeedRequest } from './model.js';

/** A create request, checked: what the steps of `create` share. */
interface CreatePlan {
  readonly namespace: string;
  readonly id: string;
  readonly sinkUri: string;
  readonly config: ReplicaConfig;
  readonly upstream: Upstream;
  readonly filter: TableFilter;
}

/** The upstream's end of binlog at create (the default start-ts) and its binlog basename. */
interface BinlogEnd {
  readonly basename: string;
  readonly endTs: Ts;
}

/** The changefeed's schema storage as taken at create, and where: the upstream's end of binlog then. */
interface TakenSchema extends BinlogEnd {
  readonly schema: Awaited<ReturnType<typeof takeChangefeedSchema>>;
  readonly reader: ResumableReaderOptions;
}

/**
 * The changefeed admin behind `/api/v2/changefeeds` (DESIGN §7), on every capture. Reads answer from
 * this capture's mirror of etcd. Create and update write the info key directly in an etcd transaction
 * guarded by its mod revision (as TiCDC's API does); pause, resume and remove are owner jobs, forwarded
 * to the owner when this capture is not it.
 */
export class ChangefeedAdmin {
  constructor(
    private readonly client: Etcd3,
    private readonly clusterId: string,
    private readonly capture: () => Capture | undefined,
    private readonly sinks: SinkRegistry,
    private readonly defaultUpstream: string | undefined,
    private readonly logger: Logger = silentLogger,
  ) {}

  /**
   * TiCDC's create, in steps: the request checked; the sink URI and the upstream checked; the changefeed's
   * schema storage taken at the upstream's end of binlog; the start and target resolved against it; the history
   * before start-ts checked when the binlog lacks column names; the schema (`--snapshot`) written to the sink;
   * then the info, upstream, schema storage and snapshot records put in one etcd transaction.
   *
   * When the row events carry their columns (binlog_row_metadata=FULL) and nothing is copied (`--snapshot
   * never`), the storage gives only the owner's table set, and nothing at create needs it: the owner takes it
   * when it starts the changefeed, after this answers (reading 100,000 tables' definitions and writing them to
   * etcd took 10 s). The table set is then the tables at the owner's snapshot, as it is at create for an earlier
   * --start-ts.
   */
  async create(req: CreateChangefeedRequest): Promise<ChangefeedDetail> {
    const plan = this.planOf(req);
    await this.sinks.validate(plan.sinkUri, plan.config.sink);
    // the upstream must be able to feed a changefeed at all: refuse at create, with the setting that fixes it
    const settings = await plan.upstream.preflight();
    if (await this.client.get(changefeedInfoKey(this.clusterId, plan.namespace, plan.id)).exists()) {
      throw new TidemarkError('ErrChangefeedAlreadyExists', `changefeed ${plan.id} already exists in namespace ${plan.namespace}`);
    }
    if (plan.config.snapshot.mode === 'never' && hasFullRowMetadata(settings)) {
      const end = await this.endOfBinlog(plan);
      const { startTs, targetTs } = await this.resolveRange(req, plan, end);
      await this.register(plan, { schema: undefined, basename: end.basename }, startTs, targetTs, []);
      await this.waitVisible(plan.namespace, plan.id, (i) => i !== undefined);
      return this.get(plan.id, plan.namespace);
    }
    const taken = await this.takeSchema(plan);
    const { startTs, targetTs } = await this.resolveRange(req, plan, taken);
    if (!hasFullRowMetadata(settings)) await this.checkHistory(plan, taken, startTs, settings.binlogRowMetadata);
    const snapshotTables = plan.config.snapshot.mode === 'never' ? [] : await this.snapshotSchema(plan, taken, startTs);
    await this.register(plan, taken, startTs, targetTs, snapshotTables);
    await this.waitVisible(plan.namespace, plan.id, (i) => i !== undefined);
    return this.get(plan.id, plan.namespace);
  }

  /** The request's names, sink URI, config and upstream, checked before anything is asked of a server. */
  private planOf(req: CreateChangefeedRequest): CreatePlan {
    const namespace = validateName(req.namespace ?? DEFAULT_NAMESPACE, 'namespace');
    const id = validateName(req.changefeed_id ?? randomUUID(), 'changefeed id');
    if (req.sink_uri === undefined || req.sink_uri === '') throw new TidemarkError('ErrSinkURIInvalid', '--sink-uri is required, e.g. blackhole:// or mysql://user@host:3306/');
    const config = parseReplicaConfig(req.replica_config ?? {}, 'the changefeed config');
    if (config.snapshot.mode !== 'never' && req.start_ts !== undefined && req.start_ts !== '' && req.start_ts !== '0') {
      throw new TidemarkError('ErrInvalidArgument', `--snapshot ${config.snapshot.mode} starts the changefeed where the schema is copied (the upstream's end of binlog); it cannot be combined with --start-ts ${req.start_ts}`);
    }
    const upstream = req.upstream ?? this.defaultUpstream;
    if (upstream === undefined) {
      throw new TidemarkError('ErrUpstreamMissing', 'no upstream for the changefeed: pass --upstream mysql://user:password@host:port, or start cdc server with --upstream');
    }
    return { namespace, id, sinkUri: req.sink_uri, config, upstream: Upstream.of(upstream), filter: new TableFilter(config.filter.rules, config['case-sensitive']) };
  }

  /**
   * The changefeed's schema storage starts at the upstream's end of binlog, with a snapshot whose position is the
   * default start-ts (no DDL can slip in between): the owner's table set at start-ts, and the columns when row
   * events lack names.
   */
  private async takeSchema(plan: CreatePlan): Promise<TakenSchema> {
    const end = await plan.upstream.endTs();
    const reader = plan.upstream.readerOptions(end.basename, replicaServerId(`create/${plan.namespace}/${plan.id}`));
    const schema = await takeChangefeedSchema(plan.upstream, reader);
    return { schema, reader, basename: end.basename, endTs: schema.coveredFrom > end.ts ? schema.coveredFrom : end.ts };
  }

  /** The upstream's end of binlog, for a changefeed whose owner takes the schema storage. */
  private async endOfBinlog(plan: CreatePlan): Promise<BinlogEnd> {
    const end = await plan.upstream.endTs();
    return { basename: end.basename, endTs: end.ts };
  }

  /** start-ts (default: where the schema was taken; a time; a ts) and target-ts, checked against each other and the upstream. */
  private async resolveRange(req: CreateChangefeedRequest, plan: CreatePlan, { endTs, basename }: BinlogEnd): Promise<{ startTs: Ts; targetTs: Ts }> {
    const startTime = req.start_ts === undefined ? undefined : parseTimeForm(req.start_ts);
    const startTs =
      req.start_ts === undefined || req.start_ts === '' || req.start_ts === '0'
        ? endTs
        : startTime !== undefined
          ? await tsAtTime(plan.upstream, startTime, AbortSignal.timeout(60_000))
          : parseTs(req.start_ts, '--start-ts');
    if (startTs > endTs) {
      throw new TidemarkError('ErrStartTsBeyondUpstream', `--start-ts ${startTs} (${formatCoordinate(startTs, basename)}) is later than the upstream's end of binlog ${endTs} (${formatCoordinate(endTs, basename)})`);
    }
    const targetTs = req.target_ts === undefined || req.target_ts === '' ? 0n : parseTs(req.target_ts, '--target-ts');
    if (targetTs !== 0n && targetTs <= startTs) {
      throw new TidemarkError('ErrInvalidTs', `--target-ts ${targetTs} must be later than --start-ts ${startTs}`);
    }
    return { startTs, targetTs };
  }

  /**
   * Without names in the row events, rows before the schema snapshot need the definitions they had then: the DDL
   * back to start-ts is read, and a selected table whose definition at start-ts cannot be known is refused.
   */
  private async checkHistory(plan: CreatePlan, { schema, reader, basename }: TakenSchema, startTs: Ts, rowMetadata: string | null | undefined): Promise<void> {
    if (!(await extendChangefeedSchema(schema, reader, startTs))) return;
    const unknown = schema.unknownTables().filter((t) => plan.filter.match(t.schema, t.table));
    if (unknown.length === 0) return;
    const last = unknown.reduce((a, b) => (b.before > a.before ? b : a));
    throw new TidemarkError(
      'ErrInvalidTs',
      `--start-ts ${startTs} (${formatCoordinate(startTs, basename)}) is before DDL that changed ${unknown.map((t) => `${t.schema}.${t.table} (at ${formatCoordinate(t.before, basename)})`).join(', ')}; ` +
        `the upstream's binlog_row_metadata is ${rowMetadata ?? 'not supported'}, so their rows before that DDL cannot be mounted: start at or after ${formatCoordinate(last.before, basename)}, or set binlog_row_metadata=FULL on the upstream`,
    );
  }

  /**
   * `--snapshot schema|initial`: the selected databases and tables as they are at start-ts go to the sink before
   * the changefeed exists (nothing of it runs until they are there). Returns the tables whose rows are copied.
   */
  private async snapshotSchema(plan: CreatePlan, { schema, reader }: TakenSchema, startTs: Ts): Promise<readonly QualifiedName[]> {
    const { mode } = plan.config.snapshot;
    const tables = schema.tablesAt(startTs).filter((t) => plan.filter.match(t.schema, t.table));
    if (tables.length === 0) {
      throw new TidemarkError('ErrInvalidArgument', `--snapshot ${mode}: the filter rules ${JSON.stringify(plan.config.filter.rules)} select no table of the upstream, so there is nothing to copy`);
    }
    if (mode === 'initial') await checkSnapshotSupport(plan.upstream);
    const snapshot = await readSchemaSnapshot(plan.upstream, reader, startTs, tables, async () => (await plan.upstream.endTs()).ts);
    await this.writeToSink(plan.sinkUri, plan.config, plan.id, (sink, log) => writeSchemaSnapshot(sink, snapshot, log));
    this.logger.info('schema snapshot written to the sink', { changefeed: plan.id, tables: snapshot.tables.length, databases: snapshot.databases.length, ts: String(startTs) });
    return mode === 'initial' ? tables : [];
  }

  /**
   * The schema storage's parts go first and its manifest with the info key, in one txn: the owner starts the
   * changefeed as soon as the info key is there, and a concurrent create of the same id that loses the txn leaves
   * the winner's storage alone. Without a storage (the owner takes it), the txn deletes the manifest of one left by
   * an earlier changefeed of the id, so the owner never loads that. Each copied table's snapshot record starts
   * pending (with many tables they go first: an etcd transaction takes 128 operations).
   */
  private async register(plan: CreatePlan, { schema, basename }: { readonly schema: TakenSchema['schema'] | undefined; readonly basename: string }, startTs: Ts, targetTs: Ts, snapshotTables: readonly QualifiedName[]): Promise<void> {
    const { namespace, id, upstream } = plan;
    const upstreamId = upstream.id;
    const info: ChangefeedInfo = {
      'upstream-id': upstreamId,
      namespace,
      'changefeed-id': id,
      'sink-uri': plan.sinkUri,
      'create-time': new Date().toISOString(),
      'start-ts': startTs.toString(),
      'target-ts': targetTs.toString(),
      'admin-job-type': AdminJobType.none,
      config: replicaConfigToInput(plan.config),
      state: 'normal',
      error: null,
      warning: null,
      'creator-version': buildInfo().version,
      epoch: randomUUID(),
    };
    const upstreamRecord: UpstreamRecord = { id: upstreamId, uri: upstream.uri, basename };
    const key = changefeedInfoKey(this.clusterId, namespace, id);
    // without a storage (the owner takes it), one left by an earlier changefeed of the id must not be loaded
    const store = new EtcdSchemaStore(this.client, this.clusterId);
    const staged = schema === undefined ? await store.vacate(namespace, id) : await store.stage(namespace, id, schema);
    const records = snapshotTables.map((t) => this.client.put(changefeedSnapshotKey(this.clusterId, namespace, id, `${t.schema}.${t.table}`)).value(JSON.stringify(pendingRecord(startTs))));
    const inTxn = records.length <= 100 ? records : [];
    if (inTxn.length === 0) for (let i = 0; i < records.length; i += 100) await Promise.all(records.slice(i, i + 100).map((put) => put.exec()));
    const res = await this.client
      .if(key, 'Create', '==', 0)
      .then(this.client.put(key).value(JSON.stringify(info)), this.client.put(upstreamKey(this.clusterId, namespace, upstreamId)).value(JSON.stringify(upstreamRecord)), staged.manifest, ...inTxn)
      .commit();
    // the winner deletes a storage left by an earlier changefeed of the same id (its removal could not), the loser its own
    await staged.settle(res.succeeded);
    if (!res.succeeded) throw new TidemarkError('ErrChangefeedAlreadyExists', `changefeed ${id} already exists in namespace ${namespace}`);
  }

  /** Opens the changefeed's sink for one job (the schema snapshot at create) and closes it again. */
  private async writeToSink(sinkUri: string, config: ReplicaConfig, id: string, job: (sink: Sink, log: Logger) => Promise<void>): Promise<void> {
    const endpoint = await this.sinks.endpoint(sinkUri);
    const log = this.logger.with({ changefeed: id, sink: endpoint.scheme });
    const controller = new AbortController();
    let sink: Sink | undefined;
    try {
      sink = await endpoint.open({ signal: controller.signal, changefeedId: id, logger: log, sinkConfig: config.sink, forceReplicate: config['force-replicate'], dispatchers: await this.sinks.dispatchers() });
      await job(sink, log);
    } catch (error) {
      throw sinkError(error, `the sink ${endpoint.redacted} failed while the schema snapshot was written`);
    } finally {
      await sink?.close().catch(() => undefined);
      controller.abort();
    }
  }

  list(all: boolean, namespace?: string): ChangefeedSummary[] {
    const items: ChangefeedSummary[] = [];
    for (const cf of this.state().changefeeds.values()) {
      if (namespace !== undefined && cf.namespace !== namespace) continue;
      const info = cf.info;
      if (info === undefined) continue;
      if (!all && (info.state === 'finished' || info.state === 'removed')) continue;
      items.push(this.summary(info, cf.status));
    }
    return items.sort((a, b) => a.id.localeCompare(b.id));
  }

  get(id: string, namespace = DEFAULT_NAMESPACE): ChangefeedDetail {
    const cf = this.state().changefeeds.get(`${namespace}/${id}`);
    const info = cf?.info;
    if (cf === undefined || info === undefined) throw new TidemarkError('ErrChangefeedNotExists', `changefeed ${id} does not exist in namespace ${namespace}`);
    const status = cf.status;
    const snapshot = snapshotSummaryOf(info.config?.snapshot?.mode, cf.snapshots);
    return {
      ...this.summary(info, status),
      sink_uri: redactUri(info['sink-uri']),
      create_time: info['create-time'],
      start_ts: info['start-ts'],
      target_ts: info['target-ts'],
      resolved_ts: status?.['resolved-ts'] ?? info['start-ts'],
      creator_version: info['creator-version'],
      warning: info.warning,
      config: info.config,
      // each capture's progress and problems, without its table list (GET …/tables pages through the tables)
      task_status: [...cf.taskPositions].map(([capture_id, { tables, ...position }]) => ({ capture_id, table_count: position['table-count'] ?? tables?.length ?? 0, position })),
      ...(snapshot === undefined ? {} : { snapshot }),
    };
  }

  async update(id: string, req: UpdateChangefeedRequest, namespace = DEFAULT_NAMESPACE): Promise<ChangefeedDetail> {
    const key = changefeedInfoKey(this.clusterId, namespace, id);
    const got = await this.client.get(key).exec();
    const kv = got.kvs[0];
    if (kv === undefined) throw new TidemarkError('ErrChangefeedNotExists', `changefeed ${id} does not exist in namespace ${namespace}`);
    const decoded = decodeRecord(changefeedInfoRecord, kv.value);
    if (!decoded.ok) throw new TidemarkError('ErrInvariantBroken', `changefeed ${id} in namespace ${namespace}: its ${decoded.error}; fix or remove the key ${key}`);
    const info = decoded.value;
    if (info.state !== 'stopped' && info.state !== 'failed') {
      throw new TidemarkError('ErrChangefeedUpdateRefused', `can only update changefeed ${id} when it is stopped or failed; it is ${info.state} (pause it first)`);
    }
    const parsed = req.replica_config === undefined ? undefined : parseReplicaConfig(req.replica_config, 'the changefeed config');
    // the sink URI and [sink] as they will be together
    if (req.sink_uri !== undefined || parsed !== undefined) await this.sinks.validate(req.sink_uri ?? info['sink-uri'], (parsed ?? parseStoredReplicaConfig(info.config, 'the changefeed config')).sink);
    const targetTs = req.target_ts === undefined ? undefined : parseTs(req.target_ts, '--target-ts');
    if (targetTs !== undefined && targetTs !== 0n && targetTs <= BigInt(info['start-ts'])) {
      throw new TidemarkError('ErrInvalidTs', `--target-ts ${targetTs} must be later than the changefeed's start-ts ${info['start-ts']}`);
    }
    const config = parsed === undefined ? undefined : replicaConfigToInput(parsed);
    const epoch = randomUUID();
    const next: ChangefeedInfo = {
      ...info,
      ...(req.sink_uri === undefined ? {} : { 'sink-uri': req.sink_uri }),
      ...(targetTs === undefined ? {} : { 'target-ts': targetTs.toString() }),
      ...(config === undefined ? {} : { config }),
      epoch,
    };
    const res = await this.client.if(key, 'Mod', '==', kv.mod_revision).then(this.client.put(key).value(JSON.stringify(next))).commit();
    if (!res.succeeded) throw new TidemarkError('ErrChangefeedUpdateRefused', `changefeed ${id} changed while it was being updated; try again`, { retryable: true });
    await this.waitVisible(namespace, id, (i) => i?.epoch === epoch);
    return this.get(id, namespace);
  }

  /** Runs an owner job here when this capture is the owner; returns false when the caller must forward it. */
  async runOwnerJob(job: AdminJob): Promise<boolean> {
    const capture = this.capture();
    const owner = capture?.isOwner ? capture.owner : undefined;
    if (owner === undefined) return false;
    await owner.enqueue(job);
    if (job.type === 'drain') return true;
    const expected = { pause: 'stopped', resume: 'normal', remove: undefined }[job.type];
    await this.waitVisible(job.namespace, job.id, (i) => i?.state === expected);
    return true;
  }

  private summary(info: ChangefeedInfo, status: ChangefeedStatus | undefined): ChangefeedSummary {
    const checkpoint = status?.['checkpoint-ts'] ?? info['start-ts'];
    const basename = 'mysql-bin';
    const time = status?.['checkpoint-time'];
    return {
      namespace: info.namespace,
      id: info['changefeed-id'],
      upstream_id: info['upstream-id'],
      state: FEED_STATES.includes(info.state) ? info.state : 'normal',
      checkpoint_tso: checkpoint,
      checkpoint_coordinate: formatCoordinate(BigInt(checkpoint), basename),
      checkpoint_time: time === undefined ? null : new Date(time).toISOString(),
      error: info.error,
    };
  }

  private state() {
    const capture = this.capture();
    if (capture === undefined) throw new TidemarkError('ErrClusterUnhealthy', 'this capture is still starting');
    return capture.state;
  }

  /** Waits until this capture's mirror shows the change, so a read right after a write sees it. */
  private async waitVisible(namespace: string, id: string, ok: (info: ChangefeedInfo | undefined) => boolean): Promise<void> {
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (ok(this.capture()?.state.changefeeds.get(`${namespace}/${id}`)?.info)) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
}

function validateName(value: string, what: string): string {
  if (value.length > 128 || !CHANGEFEED_ID_PATTERN.test(value)) {
    throw new TidemarkError('ErrInvalidArgument', `invalid ${what} "${value}": it must match ^[a-zA-Z0-9]+(-[a-zA-Z0-9]+)*$ and be at most 128 characters`);
  }
  return value;
}
