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
   * The acknowledged chunks in key order, each with its key range (`lower` excluded, null: the start of the table;
   * `upper` included, null: its end) and the ts its rows were read at. Chunks are read several at once and in any
   * order, so the list may have gaps: the key ranges between entries are still to be read. Binlog changes of a key
   * at or before its chunk's ts are in the chunk's rows; changes after it are written after them. Neighbouring
   * chunks at or before the changefeed checkpoint are merged into one entry with ts "0" (no binlog change that old
   * is read again). An entry without `lower` (written by an earlier version, which read in key order) starts where
   * the entry before it ends.
   */
  readonly chunks: readonly ChunkEntry[];
  /** Rows copied and acknowledged. */
  readonly rows: number;
  /** How the table is read: by key ranges, or in one consistent pass (no key that orders in chunks). */
  readonly method?: 'chunks' | 'one-pass';
  /** The server's estimate of the table's rows when the copy began (information_schema.TABLES). */
  readonly 'estimated-rows'?: number;
}

export interface ChunkEntry {
  readonly lower?: EncodedKey | null | undefined;
  readonly upper: EncodedKey | null;
  readonly ts: string;
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

const sameKey = (a: EncodedKey | null | undefined, b: EncodedKey | null | undefined): boolean => JSON.stringify(a) === JSON.stringify(b);

/** The entries with every `lower` given (an entry without one starts where the entry before it ends). */
export function explicitChunks(chunks: readonly ChunkEntry[]): { lower: EncodedKey | null; upper: EncodedKey | null; ts: string }[] {
  const out: { lower: EncodedKey | null; upper: EncodedKey | null; ts: string }[] = [];
  for (const c of chunks) out.push({ lower: c.lower !== undefined ? c.lower : out.length === 0 ? null : out[out.length - 1].upper, upper: c.upper, ts: c.ts });
  return out;
}

/**
 * The chunk list with `entry` (a chunk just acknowledged) in its place by key; `compare` orders key tuples as the
 * server does. Ranges never overlap, so the order of their upper ends is the order of the ranges.
 */
export function addChunk(chunks: readonly ChunkEntry[], entry: ChunkEntry & { readonly lower: EncodedKey | null }, compare: (a: readonly Value[], b: readonly Value[]) => number): ChunkEntry[] {
  const out: ChunkEntry[] = explicitChunks(chunks);
  const upper = entry.upper === null ? null : decodeKey(entry.upper);
  let at = out.length;
  while (at > 0) {
    const before = out[at - 1].upper;
    if (upper !== null && (before === null || compare(decodeKey(before), upper) > 0)) at--;
    else break;
  }
  out.splice(at, 0, entry);
  return out;
}

/**
 * The chunk list with neighbouring chunks (one ends where the next begins) read at or before `checkpointTs` (the
 * changefeed's checkpoint: no capture reads the binlog from before it again) merged into one entry with ts 0.
 */
export function compactChunks(chunks: TableSnapshotRecord['chunks'], checkpointTs: Ts): TableSnapshotRecord['chunks'] {
  const all = explicitChunks(chunks);
  const out: ChunkEntry[] = [];
  let merged = false;
  for (const c of all) {
    const last = out[out.length - 1] as ChunkEntry | undefined;
    if (last !== undefined && last.ts === '0' && BigInt(c.ts) <= checkpointTs && sameKey(last.upper, c.lower)) {
      out[out.length - 1] = { lower: last.lower ?? null, upper: c.upper, ts: '0' };
      merged = true;
    } else if (BigInt(c.ts) <= checkpointTs && c.ts !== '0') {
      out.push({ ...c, ts: '0' });
      merged = true;
    } else out.push(c);
  }
  return merged ? out : chunks;
}
