import type { RowDataPacket } from 'mysql2/promise';
import type { Capture } from './capture.js';
import { Upstream } from '../upstream/upstream.js';
import { endOfBinlog } from '../upstream/binlog-position.js';
import { tsFileSeq, tsPosition } from '../model/ts.js';
import type { Processor } from '../processor/processor.js';
import type { SharedBinlog } from '../logservice/shared-binlog.js';
import type { SharedRows } from '../pipeline/mounter/shared-rows.js';
import { FEED_STATES } from '../model/changefeed.js';
import { FEED_STATE_CODES, lagSeconds, type TidemarkMetrics } from '../metrics/metrics.js';

/** How long the upstream's end of binlog read for the reader-lag gauges is reused (ms). */
const UPSTREAM_END_TTL_MS = 3000;
/** A scrape waits this long at most for an upstream's first end-of-binlog read (ms). */
const FIRST_READ_WAIT_MS = 1000;

/**
 * Lag is now minus the commit time of the checkpoint (or of the reader's position); while the upstream is idle that
 * time stays at the last commit, so a caught-up changefeed would seem to fall behind. When the upstream's end of
 * binlog, read at time R, was at or before the position, every later commit happened after R: the lag is then
 * measured from R at most. `caughtUpAt` keeps the latest such R per changefeed (owner) or processor.
 */
function lagFrom(commitTime: number, caughtUpAt: number | undefined, now: number): number {
  return lagSeconds(Math.max(commitTime, caughtUpAt ?? 0), now);
}

/** The end of binlog `end` read at `at`, at or before a position: every commit after the position came after `at`. */
interface CaughtUp {
  readonly end: bigint;
  readonly at: number;
}

/** Notes `end` if the position has reached it; returns when the position was last known caught up, if it still holds. */
export function caughtUpAt(known: CaughtUp | undefined, end: { ts: bigint; at: number } | undefined, position: bigint): { known: CaughtUp | undefined; at: number | undefined } {
  let next = known;
  if (end !== undefined && end.ts <= position && (known === undefined || end.at > known.at)) next = { end: end.ts, at: end.at };
  // a position that went back (a reader reading again, a resume with an older checkpoint) no longer covers it
  return { known: next, at: next !== undefined && position >= next.end ? next.at : undefined };
}

/**
 * Fills the gauges read when scraped from what a capture keeps: the changefeeds' status as the owner sees it
 * (owner only, as TiCDC's owner metrics), each processor here (checkpoint, resolved, quota, spill, reader), the
 * log service's shared reads, and the counters processors keep as plain numbers (added as the difference since the last scrape). Returns the
 * collector to register with `metrics.onCollect`.
 */
export function captureCollector(metrics: TidemarkMetrics, capture: () => Capture | undefined): () => Promise<void> {
  const seen = new WeakMap<Processor, ProcessorCounts>();
  const upstreamEnds = new UpstreamEnds();
  const ownerCaughtUp = new Map<string, CaughtUp>();
  const readerCaughtUp = new WeakMap<Processor, CaughtUp>();
  const fellBehind = new WeakMap<SharedBinlog, number>();
  const decodes = new WeakMap<SharedRows, { shared: number; decoded: number }>();
  return async () => {
    const c = capture();
    metrics.isOwner.set(c?.isOwner === true ? 1 : 0);
    metrics.capturesAlive.set(c?.state.captures.size ?? 0);
    await collectOwner(metrics, c, upstreamEnds, ownerCaughtUp);
    await collectProcessors(metrics, c, seen, upstreamEnds, readerCaughtUp);
    collectLogService(metrics, c, fellBehind, decodes);
  };
}

async function collectOwner(metrics: TidemarkMetrics, capture: Capture | undefined, upstreamEnds: UpstreamEnds, caughtUp: Map<string, CaughtUp>): Promise<void> {
  const feeds = capture?.isOwner === true ? [...capture.state.changefeeds.values()] : [];
  const ends = await Promise.all(
    feeds.map((cf) => {
      const info = cf.info;
      const replicating = info !== undefined && (info.state === 'normal' || info.state === 'warning');
      const uri = replicating ? (capture!.state.upstreams.get(info['upstream-id']))?.uri : undefined;
      return uri === undefined ? Promise.resolve(undefined) : upstreamEnds.get(uri);
    }),
  );
  const gauges = [metrics.ownerCheckpointLag, metrics.ownerCheckpointTs, metrics.ownerCheckpointFile, metrics.ownerResolvedTs, metrics.ownerStatus, metrics.changefeedState, metrics.changefeedError, metrics.changefeedTables, metrics.snapshotRowsCopied, metrics.snapshotRowsEstimated, metrics.snapshotTables];
  for (const g of gauges) g.reset();
  if (capture?.isOwner !== true) {
    caughtUp.clear();
    return;
  }
  const now = Date.now();
  for (const [key] of caughtUp) if (!capture.state.changefeeds.has(key)) caughtUp.delete(key);
  feeds.forEach((cf, i) => {
    const info = cf.info;
    const status = cf.status;
    if (info === undefined) return;
    const labels = { namespace: cf.namespace, changefeed: cf.id };
    const key = `${cf.namespace}/${cf.id}`;
    metrics.ownerStatus.set(labels, FEED_STATE_CODES.indexOf(info.state));
    for (const state of FEED_STATES) metrics.changefeedState.set({ ...labels, state }, info.state === state ? 1 : 0);
    if (info.error !== null && info.error !== undefined) metrics.changefeedError.set({ ...labels, code: info.error.code }, 1);
    if (status !== undefined) {
      const checkpoint = BigInt(status['checkpoint-ts']);
      metrics.ownerCheckpointTs.set(labels, Number(checkpoint));
      metrics.ownerCheckpointFile.set(labels, tsFileSeq(checkpoint));
      if (status['resolved-ts'] !== undefined) metrics.ownerResolvedTs.set(labels, Number(BigInt(status['resolved-ts'])));
      const { known, at } = caughtUpAt(caughtUp.get(key), ends[i], checkpoint);
      if (known !== undefined) caughtUp.set(key, known);
      const time = status['checkpoint-time'] ?? 0;
      // lag only while it replicates: a stopped or failed changefeed alerts by its state, not by a growing lag
      if ((time > 0 || at !== undefined) && (info.state === 'normal' || info.state === 'warning')) metrics.ownerCheckpointLag.set(labels, lagFrom(time, at, now));
    }
    const tables = capture.owner?.runtimes.get(`${cf.namespace}/${cf.id}`)?.runtime.scheduler.sets.size;
    if (tables !== undefined) metrics.changefeedTables.set(labels, tables);
    if (cf.snapshots.size > 0) {
      let rows = 0;
      let estimated = 0;
      const states = { pending: 0, copying: 0, done: 0 };
      for (const record of cf.snapshots.values()) {
        rows += record.rows;
        estimated += record['estimated-rows'] ?? 0;
        states[record.state]++;
      }
      metrics.snapshotRowsCopied.set(labels, rows);
      metrics.snapshotRowsEstimated.set(labels, estimated);
      for (const [state, n] of Object.entries(states)) metrics.snapshotTables.set({ ...labels, state }, n);
    }
  });
}

/** The capture's shared binlog reads (the log service), per upstream. */
function collectLogService(metrics: TidemarkMetrics, capture: Capture | undefined, seen: WeakMap<SharedBinlog, number>, decodesSeen: WeakMap<SharedRows, { shared: number; decoded: number }>): void {
  metrics.logServiceReading.reset();
  metrics.logServiceReaders.reset();
  metrics.logServiceStoredBytes.reset();
  for (const [upstream, shared, rows] of capture?.logService?.reads() ?? []) {
    const labels = { upstream };
    metrics.logServiceReading.set(labels, shared.reading ? 1 : 0);
    const attached = shared.attachedCount;
    metrics.logServiceReaders.set({ upstream, mode: 'shared' }, attached);
    metrics.logServiceReaders.set({ upstream, mode: 'own' }, shared.readerCount - attached);
    metrics.logServiceStoredBytes.set(labels, shared.storedBytes);
    metrics.logServiceFellBehind.inc(labels, Math.max(0, shared.detaches - (seen.get(shared) ?? 0)));
    seen.set(shared, shared.detaches);
    const decodes = decodesSeen.get(rows) ?? { shared: 0, decoded: 0 };
    metrics.logServiceRowsDecoded.inc({ upstream, decode: 'own' }, rows.decodes.decoded - decodes.decoded);
    metrics.logServiceRowsDecoded.inc({ upstream, decode: 'shared' }, rows.decodes.shared - decodes.shared);
    decodesSeen.set(rows, { ...rows.decodes });
  }
}

async function collectProcessors(
  metrics: TidemarkMetrics,
  capture: Capture | undefined,
  seen: WeakMap<Processor, ProcessorCounts>,
  upstreamEnds: UpstreamEnds,
  caughtUp: WeakMap<Processor, CaughtUp>,
): Promise<void> {
  const gauges = [metrics.processorCheckpointLag, metrics.processorResolvedLag, metrics.processorCheckpointTs, metrics.processorResolvedTs, metrics.processorTables, metrics.sorterMemory, metrics.sorterMemoryQuota, metrics.sorterSpilled, metrics.binlogReaderTs, metrics.binlogReaderFile, metrics.binlogReaderLagBytes, metrics.binlogReaderLagFiles, metrics.upstreamFirstBinlogFile];
  if (metrics.perTable) gauges.push(metrics.tableCheckpointLag, metrics.tableResolvedTs);
  const now = Date.now();
  const running: Processor[] = [];
  for (const r of capture?.processorManager?.processors.values() ?? []) if (!r.stopping) running.push(r.processor);
  const ends = await Promise.all(running.map((p) => upstreamEnds.get(p.upstream.uri)));
  for (const g of gauges) g.reset();
  running.forEach((p, i) => {
    const [namespace, ...rest] = p.changefeedKey.split('/');
    const labels = { namespace: namespace, changefeed: rest.join('/') };
    const { checkpointTs: checkpoint, resolvedTs } = p.floors();
    metrics.processorCheckpointTs.set(labels, Number(checkpoint));
    metrics.processorResolvedTs.set(labels, Number(resolvedTs));
    metrics.processorTables.set(labels, p.tables.size);
    let checkpointTime = 0;
    for (const t of p.tables.values()) {
      if (t.state === 'replicating' && t.checkpointTs === checkpoint && t.checkpointTime > 0) checkpointTime = checkpointTime === 0 ? t.checkpointTime : Math.min(checkpointTime, t.checkpointTime);
      if (metrics.perTable && t.state === 'replicating') {
        const tableLabels = { ...labels, table: t.key };
        if (t.checkpointTime > 0) metrics.tableCheckpointLag.set(tableLabels, lagSeconds(t.checkpointTime, now));
        metrics.tableResolvedTs.set(tableLabels, Number(p.resolvedOf(t)));
      }
    }
    const end = ends[i];
    const reader = p.readerTs;
    const { known, at: readerCaughtUpAt } = caughtUpAt(caughtUp.get(p), reader > 0n ? end : undefined, reader);
    if (known !== undefined) caughtUp.set(p, known);
    // the tables' checkpoint is caught up when it is at the reader's position and the reader is
    const checkpointCaughtUpAt = checkpoint >= reader ? readerCaughtUpAt : undefined;
    if (checkpointTime > 0 || checkpointCaughtUpAt !== undefined) metrics.processorCheckpointLag.set(labels, lagFrom(checkpointTime, checkpointCaughtUpAt, now));
    if (p.readerTime > 0 || readerCaughtUpAt !== undefined) metrics.processorResolvedLag.set(labels, lagFrom(p.readerTime, readerCaughtUpAt, now));
    metrics.sorterMemory.set(labels, p.quota.used);
    metrics.sorterMemoryQuota.set(labels, p.quota.limitBytes);
    metrics.sorterSpilled.set(labels, p.spilledBytes);
    if (reader > 0n) {
      metrics.binlogReaderTs.set(labels, Number(reader));
      metrics.binlogReaderFile.set(labels, tsFileSeq(reader));
    }
    if (end !== undefined) {
      metrics.upstreamFirstBinlogFile.set(labels, end.firstFile);
      if (reader > 0n) {
        const files = tsFileSeq(end.ts) - tsFileSeq(reader);
        metrics.binlogReaderLagFiles.set(labels, Math.max(0, files));
        metrics.binlogReaderLagBytes.set(labels, files === 0 ? Math.max(0, tsPosition(end.ts) - tsPosition(reader)) : files > 0 ? tsPosition(end.ts) : 0);
      }
    }
    // counters the processor keeps as numbers: add what they grew by since the last scrape
    const before = seen.get(p) ?? { rows: { insert: 0, update: 0, delete: 0 }, bytes: 0, spilled: 0, denied: 0, waits: 0, waitMs: 0, stalls: 0 };
    const rows = p.rowsRead;
    for (const kind of ['insert', 'update', 'delete'] as const) {
      const d = rows[kind] - (before.rows[kind] ?? 0);
      if (d > 0) metrics.rowsRead.inc({ ...labels, kind }, d);
    }
    const bytes = p.binlogRead.bytes;
    if (bytes > before.bytes) metrics.binlogReadBytes.inc(labels, bytes - before.bytes);
    else metrics.binlogReadBytes.inc(labels, 0);
    const spilled = p.totalSpilledBytes;
    metrics.sorterSpilledTotal.inc(labels, Math.max(0, spilled - before.spilled));
    const { denied, readAheadWaits: waits, readAheadWaitMs: waitMs, readAheadStalls: stalls } = p.quota;
    metrics.sorterQuotaWaits.inc(labels, Math.max(0, denied - before.denied));
    metrics.binlogReaderSinkWaits.inc(labels, Math.max(0, waits - before.waits));
    metrics.binlogReaderSinkWaitSeconds.inc(labels, Math.max(0, waitMs - before.waitMs) / 1000);
    metrics.binlogReaderStalls.inc(labels, Math.max(0, stalls - before.stalls));
    seen.set(p, { rows: { ...rows }, bytes, spilled: Math.max(spilled, before.spilled), denied, waits, waitMs, stalls });
  });
}

/** The processor's counters as last scraped: counters grow by the difference. */
interface ProcessorCounts {
  rows: Record<string, number>;
  bytes: number;
  spilled: number;
  denied: number;
  waits: number;
  waitMs: number;
  stalls: number;
}

/**
 * The upstreams' end of binlog and oldest binlog file, read again at most every few seconds per upstream, in the
 * background: a scrape takes the last value read (waiting at most FIRST_READ_WAIT_MS for the first one), so an
 * upstream that is slow or down never makes a scrape time out.
 */
class UpstreamEnds {
  private readonly cache = new Map<string, { last: UpstreamEnd | undefined; readAt: number; reading: Promise<void> | undefined }>();

  get(uri: string): Promise<UpstreamEnd | undefined> {
    let entry = this.cache.get(uri);
    if (entry === undefined) {
      entry = { last: undefined, readAt: 0, reading: undefined };
      this.cache.set(uri, entry);
    }
    const e = entry;
    if (e.reading === undefined && Date.now() - e.readAt >= UPSTREAM_END_TTL_MS) {
      e.readAt = Date.now();
      e.reading = readUpstreamEnd(uri)
        .then((value) => {
          if (value !== undefined) e.last = value;
        }, () => undefined)
        .finally(() => {
          e.reading = undefined;
        });
    }
    if (e.last !== undefined || e.reading === undefined) return Promise.resolve(e.last);
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([e.reading, new Promise<void>((resolve) => (timer = setTimeout(resolve, FIRST_READ_WAIT_MS)))]).then(() => {
      clearTimeout(timer);
      return e.last;
    });
  }
}

interface UpstreamEnd {
  readonly ts: bigint;
  readonly firstFile: number;
  /** When it was read (before the query: every commit after `ts` came after it). */
  readonly at: number;
}

/** Rejects (and the scrape goes on without it) on any failure, a URI an earlier version stored and this one refuses included. */
async function readUpstreamEnd(uri: string): Promise<UpstreamEnd | undefined> {
  const at = Date.now();
  const conn = await Upstream.of(uri).connect({ connectTimeout: 2000 });
  try {
    const { ts } = await endOfBinlog(conn);
    const [logs] = await conn.query<RowDataPacket[]>('SHOW BINARY LOGS');
    const first = /\.(\d+)$/.exec(String(logs[0]?.['Log_name'] ?? ''));
    if (first === null) return undefined;
    return { ts, firstFile: Number(first[1]), at };
  } finally {
    await conn.end().catch(() => undefined);
  }
}
