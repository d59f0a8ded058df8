import { DEFAULT_NAMESPACE, parseKey } from './etcd-keys.js';
import type { DataPatch, KeyMeta, ReactorState } from './reactor.js';
import type { ChangefeedInfo, ChangefeedStatus } from '../model/changefeed.js';
import type { TaskPosition } from '../model/task-position.js';
import type { CaptureInfo } from '../model/capture.js';
import type { UpstreamRecord } from '../model/upstream.js';
import type { TableSnapshotRecord } from '../snapshot/progress.js';
import { captureInfoRecord, changefeedInfoRecord, changefeedStatusRecord, decodeRecord, tableSnapshotRecord, taskPositionRecord, upstreamRecord, type EtcdRecord } from './records.js';

export interface OwnerCandidate {
  readonly leaseHex: string;
  readonly captureId: string;
  readonly createRevision: bigint;
}

/** A changefeed's keys, decoded (a key whose value does not decode is absent here; see `invalid`). */
export interface ChangefeedReactorState {
  readonly id: string;
  readonly namespace: string;
  info: ChangefeedInfo | undefined;
  status: ChangefeedStatus | undefined;
  /** Each capture's task position for this changefeed, by capture id. */
  readonly taskPositions: Map<string, TaskPosition>;
  /** The initial snapshot's progress per table (`--snapshot initial`), by `schema.table`. */
  readonly snapshots: Map<string, TableSnapshotRecord>;
}

const decoder = new TextDecoder();

/**
 * The typed mirror of a cluster's etcd keys (TiCDC's GlobalReactorState): captures, the owner candidates,
 * changefeeds with info, status and task positions, and upstreams. Reactors read it and queue patches.
 */
export class GlobalReactorState implements ReactorState {
  readonly captures = new Map<string, CaptureInfo>();
  readonly ownerCandidates = new Map<string, OwnerCandidate>();
  readonly changefeeds = new Map<string, ChangefeedReactorState>();
  readonly upstreams = new Map<string, UpstreamRecord>();
  /** Keys whose value does not decode, with what is wrong; they stay absent from the maps above until fixed. */
  readonly invalid = new Map<string, string>();
  private patches: DataPatch[][] = [];

  /** `onInvalid` hears of each key whose new value does not decode (a capture logs it). */
  constructor(
    readonly clusterId: string,
    private readonly onInvalid?: (key: string, error: string) => void,
  ) {}

  /** The owner: the candidate whose key was created first (etcd election semantics). */
  get ownerCaptureId(): string | undefined {
    let best: OwnerCandidate | undefined;
    for (const candidate of this.ownerCandidates.values()) {
      if (best === undefined || candidate.createRevision < best.createRevision) best = candidate;
    }
    return best?.captureId;
  }

  update(key: string, value: Uint8Array | undefined, meta: KeyMeta | undefined, _isInit?: boolean): void {
    const parsed = parseKey(this.clusterId, key);
    switch (parsed.kind) {
      case 'capture': {
        const info = this.decode(key, captureInfoRecord, value);
        if (info === undefined) this.captures.delete(parsed.captureId);
        else this.captures.set(parsed.captureId, info);
        return;
      }
      case 'owner':
        if (value === undefined || meta === undefined) this.ownerCandidates.delete(parsed.leaseHex);
        else {
          this.ownerCandidates.set(parsed.leaseHex, {
            leaseHex: parsed.leaseHex,
            captureId: decoder.decode(value),
            createRevision: meta.createRevision,
          });
        }
        return;
      case 'changefeedInfo':
        this.changefeed(parsed.namespace, parsed.changefeedId, value === undefined).info = this.decode(key, changefeedInfoRecord, value);
        this.dropEmpty(parsed.namespace, parsed.changefeedId);
        return;
      case 'changefeedStatus':
        this.changefeed(parsed.namespace, parsed.changefeedId, value === undefined).status = this.decode(key, changefeedStatusRecord, value);
        this.dropEmpty(parsed.namespace, parsed.changefeedId);
        return;
      case 'taskPosition': {
        const position = this.decode(key, taskPositionRecord, value);
        const cf = this.changefeed(parsed.namespace, parsed.changefeedId, position === undefined);
        if (position === undefined) cf.taskPositions.delete(parsed.captureId);
        else cf.taskPositions.set(parsed.captureId, position);
        this.dropEmpty(parsed.namespace, parsed.changefeedId);
        return;
      }
      case 'snapshotProgress': {
        const progress = this.decode(key, tableSnapshotRecord, value);
        const cf = this.changefeed(parsed.namespace, parsed.changefeedId, progress === undefined);
        if (progress === undefined) cf.snapshots.delete(parsed.table);
        else cf.snapshots.set(parsed.table, progress);
        this.dropEmpty(parsed.namespace, parsed.changefeedId);
        return;
      }
      case 'upstream': {
        const upstream = this.decode(key, upstreamRecord, value);
        if (upstream === undefined) this.upstreams.delete(parsed.upstreamId);
        else this.upstreams.set(parsed.upstreamId, upstream);
        return;
      }
      case 'unknown':
        return;
    }
  }

  /** The key's value decoded; undefined when deleted or when it does not decode (kept in `invalid`, reported once). */
  private decode<T>(key: string, record: EtcdRecord<T>, value: Uint8Array | undefined): T | undefined {
    if (value === undefined) {
      this.invalid.delete(key);
      return undefined;
    }
    const decoded = decodeRecord(record, value);
    if (decoded.ok) {
      this.invalid.delete(key);
      return decoded.value;
    }
    if (this.invalid.get(key) !== decoded.error) this.onInvalid?.(key, decoded.error);
    this.invalid.set(key, decoded.error);
    return undefined;
  }

  /** Queues one group of patches, committed atomically. */
  queue(group: DataPatch[]): void {
    if (group.length > 0) this.patches.push(group);
  }

  takePatches(): DataPatch[][] {
    const taken = this.patches;
    this.patches = [];
    return taken;
  }

  private changefeed(namespace: string, id: string, _deleting: boolean): ChangefeedReactorState {
    const key = `${namespace}/${id}`;
    let cf = this.changefeeds.get(key);
    if (cf === undefined) {
      cf = { id, namespace, info: undefined, status: undefined, taskPositions: new Map(), snapshots: new Map() };
      this.changefeeds.set(key, cf);
    }
    return cf;
  }

  private dropEmpty(namespace: string, id: string): void {
    const key = `${namespace}/${id}`;
    const cf = this.changefeeds.get(key);
    if (cf && cf.info === undefined && cf.status === undefined && cf.taskPositions.size === 0 && cf.snapshots.size === 0) this.changefeeds.delete(key);
  }
}

export { DEFAULT_NAMESPACE };
export type { CaptureInfo, UpstreamRecord };
