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

/** The scheduler's messages (the scheduling issue fills in their use). */
export const Topics = {
  dispatchTable: 'scheduler/dispatch-table',
  heartbeat: 'scheduler/heartbeat',
  heartbeatResponse: 'scheduler/heartbeat-response',
} as const;

export type TableState = 'absent' | 'preparing' | 'prepared' | 'replicating' | 'stopping' | 'stopped';

export interface DispatchTableRequest {
  readonly changefeed: string;
  readonly tableId: number;
  /** add (prepare first when `isSecondary`) or remove. */
  readonly action: 'add' | 'remove';
  readonly isSecondary: boolean;
  readonly checkpointTs: string;
}

export interface HeartbeatRequest {
  readonly changefeeds: readonly string[];
}

export interface TableProgressReport {
  readonly changefeed: string;
  readonly tableId: number;
  readonly state: TableState;
  readonly checkpointTs: string;
  readonly resolvedTs: string;
}

export interface HeartbeatResponse {
  readonly tables: readonly TableProgressReport[];
  readonly draining: boolean;
}
