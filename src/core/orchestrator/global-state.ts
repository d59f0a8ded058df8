import { DEFAULT_NAMESPACE, parseKey } from './etcd-keys.js';
import type { DataPatch, KeyMeta, ReactorState } from './reactor.js';

/** What a capture registers about itself (TiCDC's CaptureInfo). */
export interface CaptureInfo {
  readonly id: string;
  /** host:port of its HTTP API, as other captures and the CLI reach it. */
  readonly address: string;
  readonly version: string;
  readonly pid: number;
  readonly 'start-timestamp': number;
}

export interface OwnerCandidate {
  readonly leaseHex: string;
  readonly captureId: string;
  readonly createRevision: bigint;
}

/** The per-changefeed keys; their typed shapes arrive with the changefeed issue. */
export interface ChangefeedReactorState {
  readonly id: string;
  readonly namespace: string;
  info: unknown;
  status: unknown;
  readonly taskPositions: Map<string, unknown>;
  /** The initial snapshot's progress per table (`--snapshot initial`), by `schema.table`. */
  readonly snapshots: Map<string, unknown>;
}

const decoder = new TextDecoder();

function parseJson(value: Uint8Array): unknown {
  try {
    return JSON.parse(decoder.decode(value)) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * The typed mirror of a cluster's etcd keys (TiCDC's GlobalReactorState): captures, the owner candidates,
 * changefeeds with info, status and task positions, and upstreams. Reactors read it and queue patches.
 */
export class GlobalReactorState implements ReactorState {
  readonly captures = new Map<string, CaptureInfo>();
  readonly ownerCandidates = new Map<string, OwnerCandidate>();
  readonly changefeeds = new Map<string, ChangefeedReactorState>();
  readonly upstreams = new Map<string, unknown>();
  private patches: DataPatch[][] = [];

  constructor(readonly clusterId: string) {}

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
        const info = value === undefined ? undefined : (parseJson(value) as CaptureInfo | undefined);
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
        this.changefeed(parsed.namespace, parsed.changefeedId, value === undefined).info = value && parseJson(value);
        this.dropEmpty(parsed.namespace, parsed.changefeedId);
        return;
      case 'changefeedStatus':
        this.changefeed(parsed.namespace, parsed.changefeedId, value === undefined).status = value && parseJson(value);
        this.dropEmpty(parsed.namespace, parsed.changefeedId);
        return;
      case 'taskPosition': {
        const cf = this.changefeed(parsed.namespace, parsed.changefeedId, value === undefined);
        if (value === undefined) cf.taskPositions.delete(parsed.captureId);
        else cf.taskPositions.set(parsed.captureId, parseJson(value));
        this.dropEmpty(parsed.namespace, parsed.changefeedId);
        return;
      }
      case 'snapshotProgress': {
        const cf = this.changefeed(parsed.namespace, parsed.changefeedId, value === undefined);
        if (value === undefined) cf.snapshots.delete(parsed.table);
        else cf.snapshots.set(parsed.table, parseJson(value));
        this.dropEmpty(parsed.namespace, parsed.changefeedId);
        return;
      }
      case 'upstream':
        if (value === undefined) this.upstreams.delete(parsed.upstreamId);
        else this.upstreams.set(parsed.upstreamId, parseJson(value));
        return;
      case 'unknown':
        return;
    }
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
