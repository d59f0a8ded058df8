import type { Ts } from '../sink/api.js';
import type { Value } from '../upstream/rows.js';

/** A key tuple as JSON: each value tagged with its type, so it decodes to the same JS value (bigint, Buffer). */
export type EncodedKey = readonly (readonly [tag: 'n' | 'b' | 's' | 'x' | 'z', text: string])[];

/**
 * The progress of one table's initial snapshot (`--snapshot initial`), kept in etcd
 * (`changefeed/snapshot/{id}/{table}`): written at create as `pending`, then by the capture copying the table
 * each time the sink acknowledges a chunk, so a capture taking the table over (a move, a capture lost) goes on
 * from the chunks not acknowledged yet.
 */
export interface TableSnapshotRecord {
  /** pending: nothing copied yet; copying: some chunks acknowledged; done: every row copied and acknowledged. */
  readonly state: 'pending' | 'copying' | 'done';
  /** The changefeed's start: the snapshot's rows are read after it and reconciled with the binlog from it. */
  readonly 'start-ts': string;
  /**
   * The acknowledged chunks in key order, each with the upper end of its key range (null: the end of the table)
   * and the ts its rows were read at. Binlog changes of a key at or before its chunk's ts are in the chunk's
   * rows; changes after it are written after them. Chunks at or before the changefeed checkpoint are merged into
   * one entry with ts "0" (no binlog change that old is read again).
   */
  readonly chunks: readonly { readonly upper: EncodedKey | null; readonly ts: string }[];
  /** Rows copied and acknowledged. */
  readonly rows: number;
  /** How the table is read: by key ranges, or in one consistent pass (no key that orders in chunks). */
  readonly method?: 'chunks' | 'one-pass';
  /** The server's estimate of the table's rows when the copy began (information_schema.TABLES). */
  readonly 'estimated-rows'?: number;
}

export function pendingRecord(startTs: Ts): TableSnapshotRecord {
  return { state: 'pending', 'start-ts': String(startTs), chunks: [], rows: 0 };
}

export function encodeKey(values: readonly Value[]): EncodedKey {
  return values.map((v): readonly ['n' | 'b' | 's' | 'x' | 'z', string] => {
    if (v === null) return ['z', ''];
    if (typeof v === 'number') return ['n', String(v)];
    if (typeof v === 'bigint') return ['b', String(v)];
    if (typeof v === 'string') return ['s', v];
    return ['x', v.toString('hex')];
  });
}

export function decodeKey(key: EncodedKey): Value[] {
  return key.map(([tag, text]) => {
    switch (tag) {
      case 'z': return null;
      case 'n': return Number(text);
      case 'b': return BigInt(text);
      case 's': return text;
      case 'x': return Buffer.from(text, 'hex');
    }
  });
}

/**
 * The chunk list with the chunks read at or before `checkpointTs` (the changefeed's checkpoint: no capture
 * reads the binlog from before it again) merged into one leading entry with ts 0.
 */
export function compactChunks(chunks: TableSnapshotRecord['chunks'], checkpointTs: Ts): TableSnapshotRecord['chunks'] {
  let old = 0;
  while (old < chunks.length && BigInt(chunks[old].ts) <= checkpointTs) old++;
  if (old <= 1) return chunks;
  return [{ upper: chunks[old - 1].upper, ts: '0' }, ...chunks.slice(old)];
}
