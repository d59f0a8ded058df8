import { BugIndicatingError } from '../../errors/index.js';
import type { MemoryQuota } from '../sorter/memory-quota.js';
import { PACKED_ROW_OVERHEAD, PackedRows, type TakenRow } from '../sorter/packed-rows.js';
import { encodeKey, tablePrefix, type SpillStore } from '../sorter/spill-store.js';
import { SORTED_ROW_CODEC, type SortedRow } from '../row-codec.js';

/** Where a buffered row goes at the commit: anything with a table id (the processor's table pipeline). */
export interface RowDestination {
  readonly name: { readonly tableId: number };
}

/** The spill store's key space for rows of the transaction in progress (sorters use table ids from 1 up). */
const PENDING_TABLE_ID = 0xffffffff;
const ROW_OVERHEAD = 64;
const SPILL_BATCH_ROWS = 2048;
/** Rows held as they came while the transaction has fewer than this many; the ones after are packed (PackedRows). */
const LOOSE_ROWS = 16384;

export interface PendingRow<D extends RowDestination> {
  readonly pipeline: D;
  readonly seq: number;
  readonly payload: SortedRow;
}

/**
 * The rows of the transaction being read, until its commit gives them a ts (the binlog puts a transaction's
 * rows before its XID). Small transactions stay in memory, taking from the changefeed's memory quota (rows
 * past the first 16,384 packed as bytes, as a sorter packs a backlog); a transaction bigger than the quota
 * spills to the spill store as it is read, so a million-row transaction never has to fit in memory. `drain`
 * hands the rows back in order at the commit.
 */
export class TransactionBuffer<D extends RowDestination> {
  private memory: PendingRow<D>[] = [];
  /** Rows after the first LOOSE_ROWS, packed, tagged with their table id. */
  private readonly packed = new PackedRows<SortedRow>();
  private readonly taken: TakenRow<SortedRow> = { ts: 0n, seq: 0, tag: 0, view: undefined, object: undefined };
  private memoryBytes = 0;
  /** Of memoryBytes, what the packed rows take; the one table they all go to, or -1 (none yet) or -2 (several). */
  private packedBytes = 0;
  private packedTable = -1;
  private spillBatch: { type: 'put'; key: Buffer; value: Buffer }[] = [];
  private spilled = 0;
  private writes: Promise<void> = Promise.resolve();
  private readonly pipelines = new Map<number, D>();

  constructor(
    private readonly quota: MemoryQuota,
    private readonly store: () => SpillStore,
  ) {}

  get size(): number {
    return this.memory.length + this.packed.length + this.spilled;
  }

  /**
   * Adds a row. Returns undefined when the row is taken (the common case, with no promise to await), or a
   * promise to wait for when the transaction spills and its writes must catch up (backpressure).
   */
  add(row: PendingRow<D>): Promise<void> | undefined {
    const { payload } = row;
    const loose = this.memory.length < LOOSE_ROWS;
    const packed = loose || SORTED_ROW_CODEC.keepsIdentity(payload) ? undefined : payload;
    const cost = PackedRows.packs(packed) ? packed.length + PACKED_ROW_OVERHEAD : SORTED_ROW_CODEC.size(payload) + ROW_OVERHEAD;
    if (this.spilled === 0 && this.quota.tryAcquire(cost)) {
      if (loose) this.memory.push(row);
      else {
        const tableId = row.pipeline.name.tableId;
        this.pipelines.set(tableId, row.pipeline);
        this.packed.push(0n, row.seq, payload, packed, tableId);
        this.packedBytes += cost;
        if (this.packedTable !== tableId) this.packedTable = this.packedTable === -1 ? tableId : -2;
      }
      this.memoryBytes += cost;
      return undefined;
    }
    // a spilling transaction: its rows are encoded (they are decoded again at the commit)
    const bytes = SORTED_ROW_CODEC.encode(row.payload);
    const value = Buffer.allocUnsafe(4 + bytes.length);
    value.writeUInt32BE(row.pipeline.name.tableId, 0);
    bytes.copy(value, 4);
    this.pipelines.set(row.pipeline.name.tableId, row.pipeline);
    this.spillBatch.push({ type: 'put', key: encodeKey(PENDING_TABLE_ID, 0n, row.seq), value });
    this.spilled++;
    if (this.spillBatch.length < SPILL_BATCH_ROWS) return undefined;
    this.flushSpill();
    return this.writes;
  }

  /**
   * Hands every row back in order (memory first, then the spilled part) and empties the buffer; `each` returns
   * a promise only when the next row must wait for it. When the rows past the first 16,384 all go to one table,
   * `whole` is offered them first, packed as they are, with the quota they hold (rows kept as objects counted as a
   * sorter counts them): it returns whether it took them (a big transaction then reaches its sorter with no copy).
   */
  async drain(each: (row: PendingRow<D>) => Promise<void> | undefined, whole?: (pipeline: D, rows: PackedRows<SortedRow>) => boolean): Promise<void> {
    const rows = this.memory;
    this.memory = [];
    this.quota.releaseRead(this.memoryBytes - this.packedBytes);
    this.memoryBytes = this.packedBytes;
    for (let i = 0; i < rows.length; i++) {
      const wait = each(rows[i]);
      if (wait !== undefined) await wait;
    }
    const single = this.packedTable >= 0 ? this.pipelines.get(this.packedTable) : undefined;
    this.packedTable = -1;
    if (single !== undefined && whole !== undefined && whole(single, this.packed)) {
      if (this.packed.length !== 0) throw new BugIndicatingError('a transaction\'s packed rows were taken, but not all of them');
    } else {
      this.quota.releaseRead(this.packedBytes);
    }
    this.memoryBytes = this.packedBytes = 0;
    const taken = this.taken;
    while (this.packed.length > 0) {
      this.packed.shift(taken);
      const wait = each({ pipeline: this.pipelines.get(taken.tag)!, seq: taken.seq, payload: taken.view ?? taken.object! });
      if (wait !== undefined) await wait;
    }
    taken.view = taken.object = undefined;
    if (this.spilled === 0) {
      this.pipelines.clear();
      return;
    }
    this.flushSpill();
    await this.writes;
    const db = this.store().db;
    const range = tablePrefix(PENDING_TABLE_ID);
    for await (const [key, value] of db.iterator(range)) {
      const pipeline = this.pipelines.get(value.readUInt32BE(0))!;
      const wait = each({ pipeline, seq: key.readUInt32BE(12), payload: SORTED_ROW_CODEC.decode(Buffer.from(value.subarray(4))) });
      if (wait !== undefined) await wait;
    }
    await this.clearDisk();
  }

  /** Forgets the transaction (the reader restarts it after a lost connection). */
  async reset(): Promise<void> {
    this.quota.releaseRead(this.memoryBytes);
    this.memory = [];
    this.packed.clear(() => undefined);
    this.pipelines.clear();
    this.memoryBytes = this.packedBytes = 0;
    this.packedTable = -1;
    this.spillBatch = [];
    await this.writes;
    if (this.spilled > 0) await this.clearDisk();
  }

  private async clearDisk(): Promise<void> {
    const range = tablePrefix(PENDING_TABLE_ID);
    await this.store().db.clear(range);
    // deleted keys stay in LevelDB's (mmapped) table files until a compaction drops them: see SpillStore.compact
    await this.store().compact(range.gte, range.lt);
    this.spilled = 0;
    this.pipelines.clear();
  }

  private flushSpill(): void {
    if (this.spillBatch.length === 0) return;
    const batch = this.spillBatch;
    this.spillBatch = [];
    this.writes = this.writes.then(() => this.store().db.batch(batch));
  }
}
