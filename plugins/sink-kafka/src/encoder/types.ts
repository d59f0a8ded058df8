import type { DDLEvent, RowChangedEvent, Ts } from 'tidemark/sink';
import type { Protocol } from '../config.js';
import type { MessageBytes } from './message-bytes.js';

/** One encoded event: a Kafka message, or for open-protocol one event that the batcher packs with others. */
export interface EncodedEvent {
  readonly key: Buffer | null;
  readonly value: Buffer;
}

export interface EncoderOptions {
  /** canal-json: the `_tidb` fields and WATERMARK messages. */
  readonly enableTidbExtension: boolean;
  /** The wall clock for fields that carry the encoding time (canal-json `ts`, debezium `ts_ms`); tests fix it. */
  readonly now?: () => number;
  /** debezium: the logical server name (topic prefix) in the schema names and `source.name`. */
  readonly serverName?: string;
  /** Where messages are written (the sink's, which lets their slabs be used again); default: the encoder's own. */
  readonly bytes?: MessageBytes;
}

/**
 * A protocol encoder. Pure and synchronous; it caches per-table layouts keyed by the row's `columns` array
 * (the mounter shares one per table version), so a row costs its values only.
 */
export interface RowEncoder {
  readonly protocol: Protocol;
  /** Whether events are packed many to one Kafka message (open-protocol's key/value batches). */
  readonly batching: boolean;
  /** Where DDL goes: partition 0 only (canal-json) or every partition. */
  readonly ddlToAllPartitions: boolean;
  encodeRow(row: RowChangedEvent): EncodedEvent;
  encodeDDL(ddl: DDLEvent): EncodedEvent;
  /**
   * Optional, for protocols that bracket a table's snapshot reads with messages of their own (maxwell's
   * bootstrap-start and bootstrap-complete): the message that goes before the table's first snapshot row
   * (`start`, `row.snapshot` 'first' or 'only') or after its last (`complete`, 'last' or 'only'); `row` is that row.
   */
  encodeSnapshotEdge?(row: RowChangedEvent, edge: 'start' | 'complete'): EncodedEvent;
  /** The watermark message, or null when the protocol (as configured) has none. */
  encodeCheckpoint(ts: Ts): EncodedEvent | null;
}
