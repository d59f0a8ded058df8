/**
 * The changefeed records kept in etcd (DESIGN §3; TiCDC's ChangeFeedInfo and ChangeFeedStatus), as JSON
 * with kebab-case keys. Timestamps are decimal strings (DESIGN §2: a bigint binlog coordinate).
 */
import type { TidemarkErrorJSON } from '../errors/index.js';
import type { ReplicaConfigInput } from '../config/replica-config.js';

/** TiCDC's states; `pending` waits out a backoff after an error, `warning` runs again after one. */
export const FEED_STATES = ['normal', 'pending', 'failed', 'stopped', 'finished', 'removed', 'warning'] as const;
export type FeedState = (typeof FEED_STATES)[number];

/** 0 none, 1 stop, 2 resume, 3 remove, 4 finish (TiCDC's AdminJobType). */
export const AdminJobType = { none: 0, stop: 1, resume: 2, remove: 3, finish: 4 } as const;
export type AdminJobType = (typeof AdminJobType)[keyof typeof AdminJobType];

export interface RunningError extends TidemarkErrorJSON {
  /** ISO time the error was recorded. */
  readonly time: string;
  /** The capture that reported it. */
  readonly addr: string;
}

export interface ChangefeedInfo {
  readonly 'upstream-id': string;
  readonly namespace: string;
  readonly 'changefeed-id': string;
  readonly 'sink-uri': string;
  readonly 'create-time': string;
  readonly 'start-ts': string;
  /** "0" = no end. */
  readonly 'target-ts': string;
  readonly 'admin-job-type': AdminJobType;
  /** As in changefeed.toml (durations as strings), so it re-parses exactly. */
  readonly config: ReplicaConfigInput;
  readonly state: FeedState;
  readonly error: RunningError | null;
  readonly warning: RunningError | null;
  readonly 'creator-version': string;
  readonly epoch: string;
}

export interface ChangefeedStatus {
  readonly 'checkpoint-ts': string;
  /** Wall time (ms) of the checkpoint's commit, for lag. */
  readonly 'checkpoint-time'?: number;
  readonly 'resolved-ts'?: string;
  readonly 'min-table-barrier-ts': string;
  readonly 'admin-job-type': AdminJobType;
}

/** Changefeed ids and namespaces: TiCDC's rule. */
export const CHANGEFEED_ID_PATTERN = /^[a-zA-Z0-9]+(-[a-zA-Z0-9]+)*$/;
