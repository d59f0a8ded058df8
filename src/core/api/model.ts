/**
 * The OpenAPI's wire types (`/api/v2/…`, DESIGN §7): what the server answers and takes, what the typed client
 * (api/client.ts), the CLI and `cdc top` read. Field names are TiCDC's (snake_case).
 */
import type { ChangefeedInfo } from '../model/changefeed.js';
import type { TaskPosition } from '../model/task-position.js';

/** GET /api/v2/status: the capture answering. */
export interface ServerStatus {
  readonly version: string;
  readonly git_hash: string;
  readonly id: string;
  readonly cluster_id: string;
  readonly pid: number;
  readonly is_owner: boolean;
  readonly liveness: number;
}

/** GET /api/v2/processors: which capture runs which changefeed. */
export interface ProcessorSummary {
  readonly changefeed_id: string;
  readonly namespace: string;
  readonly capture_id: string;
}

/** GET /api/v2/captures: one capture of the cluster. */
export interface CaptureSummary {
  readonly id: string;
  readonly is_owner: boolean;
  readonly address: string;
  readonly cluster_id: string;
}

/** POST /api/v2/changefeeds. */
export interface CreateChangefeedRequest {
  readonly changefeed_id?: string;
  readonly namespace?: string;
  readonly sink_uri?: string;
  readonly start_ts?: string;
  readonly target_ts?: string;
  readonly replica_config?: unknown;
  readonly upstream?: string;
}

/**
 * GET /api/v2/changefeeds/{id}/sink: the changefeed's processor on the capture asked (404 where none runs) and its
 * sink's own counters (`stats`, when the plugin offers them: the blackhole's per-table counts).
 */
export interface ChangefeedSinkInfo {
  readonly capture_id: string | undefined;
  readonly checkpoint_ts: string;
  readonly resolved_ts: string;
  readonly spilled_bytes: number;
  readonly spilled_total_bytes: number;
  readonly memory_used: number;
  readonly memory_peak: number;
  readonly stats: unknown;
}

/** PUT /api/v2/changefeeds/{id}: what changes (the changefeed must be stopped or failed). */
export interface UpdateChangefeedRequest {
  readonly sink_uri?: string;
  readonly target_ts?: string;
  readonly replica_config?: unknown;
}

/** GET /api/v2/changefeeds: one changefeed of the list. */
export interface ChangefeedSummary {
  readonly namespace: string;
  readonly id: string;
  readonly upstream_id: string;
  readonly state: string;
  readonly checkpoint_tso: string;
  readonly checkpoint_coordinate: string;
  readonly checkpoint_time: string | null;
  readonly error: ChangefeedInfo['error'];
}

/** GET /api/v2/changefeeds/{id}. */
export interface ChangefeedDetail extends ChangefeedSummary {
  readonly sink_uri: string;
  readonly create_time: string;
  readonly start_ts: string;
  readonly target_ts: string;
  readonly resolved_ts: string;
  readonly creator_version: string;
  readonly warning: ChangefeedInfo['warning'];
  readonly config: ChangefeedInfo['config'];
  /** Per capture: its tables' count and its task position without the table list (`GET …/tables` lists them). */
  readonly task_status: { capture_id: string; table_count: number; position: Omit<TaskPosition, 'tables'> }[];
  /** The snapshot taken at create (`--snapshot schema|initial`); absent with `never`. */
  readonly snapshot?: ChangefeedSnapshotSummary;
}

/**
 * The changefeed's snapshot at create (`--snapshot schema|initial`) as `GET /api/v2/changefeeds/{id}` answers it
 * under `snapshot`. A changefeed with `--snapshot never` has none.
 *
 * With `schema` only the definitions were copied (at create, before the changefeed existed): no table has a
 * record, so `tables`, `tables_done` and `rows_copied` are 0 and `estimated_rows` is null.
 */
export interface ChangefeedSnapshotSummary {
  readonly mode: 'schema' | 'initial';
  /** Tables whose rows are copied (one etcd record each). */
  readonly tables: number;
  readonly tables_done: number;
  /** Rows copied and acknowledged by the sink, over every table. */
  readonly rows_copied: number;
  /**
   * The rows to copy in all: each table's estimate (taken when its copy begins), a done table counting the rows
   * it copied; null while some table not done has no estimate yet.
   */
  readonly estimated_rows: number | null;
}

/**
 * Per-table progress as the OpenAPI answers it (`GET /api/v2/changefeeds/{id}/tables`), for `cdc top`, and how far
 * a table's initial snapshot is: the entries processors write into their task positions (model/task-position.ts).
 */
export type { TableProgress, TableSnapshotProgress } from '../model/task-position.js';
export type { TablePage, TableQuery, TableSort } from './table-page.js';
