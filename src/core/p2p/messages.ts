/**
 * Capture-to-capture messages (DESIGN §4: etcd holds what must survive a restart; this channel carries
 * what is fast and disposable). Every message travels in an envelope that names its sender and, for
 * messages from the owner, the owner's election revision, so a capture ignores a deposed owner.
 */
export interface MessageEnvelope<P = unknown> {
  /** Capture id of the sender. */
  readonly from: string;
  readonly topic: string;
  /** Per (sender, topic) sequence number, from 1; the receiver drops what it has already seen. */
  readonly seq: number;
  /** The sender's owner election revision (create revision of its owner key), on owner messages. */
  readonly ownerRevision?: string;
  readonly payload: P;
}

export interface Ack {
  readonly topic: string;
  readonly seq: number;
}

/** The scheduler's messages (owner → capture: dispatch and heartbeat; capture → owner: heartbeat response). */
export const Topics = {
  dispatchTable: 'scheduler/dispatch-table',
  heartbeat: 'scheduler/heartbeat',
  heartbeatResponse: 'scheduler/heartbeat-response',
  progress: 'scheduler/progress',
} as const;

export type TableState = 'absent' | 'preparing' | 'prepared' | 'replicating' | 'stopping' | 'stopped';

export interface DispatchTableRequest {
  /** `namespace/id` of the changefeed. */
  readonly changefeed: string;
  /** The owner's id for the table in this changefeed (echoed in reports). */
  readonly tableId: number;
  /** The qualified table name, `schema.table` (how captures know a table; ids are the owner's). */
  readonly table: string;
  /** add (prepare first when `isSecondary`) or remove. */
  readonly action: 'add' | 'remove';
  readonly isSecondary: boolean;
  /** Where the table starts: changes with a ts at or below it are not written again. */
  readonly checkpointTs: string;
}

export interface HeartbeatRequest {
  readonly changefeeds: readonly string[];
  /**
   * The changefeeds whose every table the owner wants listed (it has no list from this capture yet, or its list
   * is old); for the others a processor lists only the tables whose state changed since its last answer. Absent
   * (an owner of an older version): every table of every changefeed.
   */
  readonly full?: readonly string[];
}

export interface TableProgressReport {
  /** `namespace/id` of the changefeed. */
  readonly changefeed: string;
  readonly tableId: number;
  /** `schema.table`; optional for reports built by tests of the pure scheduler. */
  readonly table?: string;
  readonly state: TableState;
  readonly checkpointTs: string;
  /** Wall time (ms) of the commit at checkpointTs, when the capture knows it (0 or absent: unknown). */
  readonly checkpointTime?: number;
  readonly resolvedTs: string;
}

/**
 * Table reports in one heartbeat response at most (about 200 bytes each in JSON): a message stays far below gRPC's
 * 4 MiB default, whatever the number of tables on the capture.
 */
export const MAX_REPORTS_PER_RESPONSE = 4000;

/**
 * A heartbeat response as the messages it is sent in: one when it lists at most `maxTables` tables, otherwise
 * parts of that many, each after the first marking every changefeed as a delta (it folds into the part before)
 * and each but the last naming them `continued`.
 */
export function responseParts(response: HeartbeatResponse, maxTables = MAX_REPORTS_PER_RESPONSE): HeartbeatResponse[] {
  const { tables } = response;
  if (tables.length <= maxTables) return [response];
  const changefeeds = response.changefeeds ?? [...new Set(tables.map((t) => t.changefeed))];
  const parts: HeartbeatResponse[] = [];
  for (let i = 0; i < tables.length; i += maxTables) {
    const last = i + maxTables >= tables.length;
    parts.push({
      ...response,
      changefeeds,
      delta: i === 0 ? (response.delta ?? []) : changefeeds,
      tables: tables.slice(i, i + maxTables),
      ...(last ? {} : { continued: changefeeds }),
    });
  }
  return parts;
}

export interface HeartbeatResponse {
  /**
   * The changefeeds it answers for (`namespace/id`): `tables` lists the tables of each of them on the capture (all,
   * or the changes: `delta`), and says nothing of other changefeeds. Absent from captures of an older version: then it covers every changefeed.
   */
  readonly changefeeds?: readonly string[];
  /**
   * The changefeeds whose `tables` are only the changes since the capture's last answer (a table whose state
   * changed, a table stopped); the tables of the others are all listed.
   */
  readonly delta?: readonly string[];
  readonly tables: readonly TableProgressReport[];
  /**
   * The changefeeds whose answer goes on in the capture's next response: a long list travels in parts of at most
   * MAX_REPORTS_PER_RESPONSE tables (one message of 100,000 tables was 17 MB, past gRPC's 4 MiB limit). The parts
   * after the first fold in like a delta; the owner takes the list as whole only at the part that does not name it.
   */
  readonly continued?: readonly string[];
  /** The capture is draining (SIGTERM or the drain API): it takes no new tables. */
  readonly draining: boolean;
  /** The incarnation of each changefeed's processor on the capture (`changefeed` → id): a ProgressPush names it. */
  readonly processors?: Readonly<Record<string, string>>;
}

/**
 * A processor's progress between heartbeats, pushed when its checkpoint moves: one floor, whatever the number
 * of tables. Every table the processor replicates has its checkpoint at or above `checkpointTs` (and its
 * resolved-ts at or above `resolvedTs`). The owner applies it to the tables the last heartbeat of the same
 * processor incarnation listed as replicating and still has primary there; per-table states travel with heartbeats.
 */
export interface ProgressPush {
  /** `namespace/id` of the changefeed. */
  readonly changefeed: string;
  /** The processor incarnation (HeartbeatResponse.processors): a restarted processor's floor says nothing of the tables it lost. */
  readonly processor: string;
  readonly checkpointTs: string;
  /** Wall time (ms) of the commit at checkpointTs, when known. */
  readonly checkpointTime?: number;
  readonly resolvedTs: string;
}
