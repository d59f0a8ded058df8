/** Rows are packed into slabs of this size: under glibc's mmap threshold, so a freed slab's memory is reused. */
export const SLAB_BYTES = 64 * 1024;
/** A row bigger than this keeps its own buffer (packing it would leave too much of a slab unused). */
export const MAX_PACKED_BYTES = 8 * 1024;
/** Memory a packed row takes besides its bytes: its five fields, and its share of its transaction's ts. */
export const PACKED_ROW_OVERHEAD = 24;
/** Fields for this many rows are kept when the queue empties; a bigger array (a backlog's) goes. */
const KEPT_FIELDS_ROWS = 4096;

/** What `shift` takes out. */
export interface TakenRow<T> {
  ts: bigint;
  seq: number;
  /** What the row was added with as `tag` (e.g. where it goes). */
  tag: number;
  view: Buffer | undefined;
  object: T | undefined;
}

const FIELDS = 5; // slab number, offset, length, seq, tag
/** The length field of a row kept as an object (in `objects`, by its index). */
const AS_OBJECT = 0xffffffff;

/**
 * Rows waiting in memory, oldest first (a table sorter's queue, a transaction's rows before its commit): each
 * row's bytes copied into 64 KiB slabs, its slab, offset, length, seq and a tag in one typed array, and the ts
 * once per run of rows with the same ts (a transaction). A waiting row is then a few bytes in a slab instead of
 * objects (the event, the buffer object, its backing) that the garbage collector must move to the old
 * generation and walk at every full collection: a backlog of a million rows costs the collector nothing and
 * takes about the bytes it had in the binlog. Taking a row gives a view of its slab; slabs are only appended to,
 * never written over, so a view (or a value decoded as a view of it) stays valid as long as it is held, and a
 * slab goes when nothing holds it.
 *
 * A row given without bytes to pack (its identity matters: shared by several changefeeds, see SharedRows), or
 * with more than MAX_PACKED_BYTES, is kept as the object it is.
 */
export class PackedRows<T> {
  private fields = new Uint32Array(FIELDS * 1024);
  /** The index of the row whose fields are at the start of `fields`. */
  private fieldsBase = 0;
  /** The index of the oldest row held, and of the next row added (indexes only grow). */
  private head = 0;
  private tail = 0;
  /** Slabs holding rows from `head` on; `slabs[0]` is slab number `slabsBase`. */
  private slabs: Buffer[] = [];
  private slabsBase = 0;
  private slabUsed = SLAB_BYTES;
  /** A ts, and the index after the last row with it; from `runHead` on. */
  private runTs: bigint[] = [];
  private runEnd: number[] = [];
  private runHead = 0;
  /** Rows kept as objects, by index. */
  private readonly objects = new Map<number, T>();

  get length(): number {
    return this.tail - this.head;
  }

  /** The ts of the oldest row; only when `length > 0`. */
  get headTs(): bigint {
    return this.runTs[this.runHead];
  }

  /** Whether a row with these bytes is packed (see `push`); a row that is not is kept as its object. */
  static packs(bytes: Buffer | undefined): bytes is Buffer {
    return bytes !== undefined && bytes.length <= MAX_PACKED_BYTES;
  }

  /**
   * Adds a row (after every row added before it): its `bytes` are copied when `packs(bytes)`; otherwise `object`
   * is kept as it is.
   */
  push(ts: bigint, seq: number, object: T, bytes: Buffer | undefined, tag = 0): void {
    const at = this.reserve();
    const i = at * FIELDS;
    this.fields[i + 3] = seq;
    this.fields[i + 4] = tag;
    if (!PackedRows.packs(bytes)) {
      this.fields[i + 2] = AS_OBJECT;
      this.objects.set(this.tail, object);
    } else {
      const length = bytes.length;
      if (this.slabUsed + length > SLAB_BYTES) {
        this.slabs.push(Buffer.allocUnsafeSlow(SLAB_BYTES));
        this.slabUsed = 0;
      }
      bytes.copy(this.slabs[this.slabs.length - 1], this.slabUsed);
      this.fields[i] = this.slabsBase + this.slabs.length - 1;
      this.fields[i + 1] = this.slabUsed;
      this.fields[i + 2] = length;
      this.slabUsed += length;
    }
    this.appended(ts);
  }

  /** Counts in the row just placed at `tail`, with its ts: the last run grows, or a new one starts. */
  private appended(ts: bigint): void {
    this.tail++;
    const runs = this.runTs.length;
    if (runs > this.runHead && this.runTs[runs - 1] === ts) this.runEnd[runs - 1] = this.tail;
    else {
      this.runTs.push(ts);
      this.runEnd.push(this.tail);
    }
  }

  /**
   * Takes the oldest row: `view` gets a view of its bytes in the slab (valid as long as it is held), or `object`
   * the row kept as an object.
   */
  shift(into: TakenRow<T>): void {
    const index = this.head;
    const i = (index - this.fieldsBase) * FIELDS;
    into.ts = this.runTs[this.runHead];
    into.seq = this.fields[i + 3];
    into.tag = this.fields[i + 4];
    const length = this.fields[i + 2];
    if (length === AS_OBJECT) {
      into.object = this.objects.get(index)!;
      into.view = undefined;
      this.objects.delete(index);
    } else {
      const slab = this.fields[i] - this.slabsBase;
      const offset = this.fields[i + 1];
      into.view = this.slabs[slab].subarray(offset, offset + length);
      into.object = undefined;
      // the slabs before this row's hold nothing still queued: they go once no view holds them
      if (slab > 0) {
        this.slabs.splice(0, slab);
        this.slabsBase += slab;
      }
    }
    this.head++;
    if (this.runEnd[this.runHead] === this.head) {
      this.runHead++;
      if (this.runHead > 1024 && this.runHead * 2 > this.runTs.length) {
        this.runTs.splice(0, this.runHead);
        this.runEnd.splice(0, this.runHead);
        this.runHead = 0;
      }
    }
    if (this.head === this.tail) this.reset();
  }

  /** The seq of the oldest row and of the newest; only when `length > 0`. */
  get headSeq(): number {
    return this.fields[(this.head - this.fieldsBase) * FIELDS + 3];
  }

  get tailSeq(): number {
    return this.fields[(this.tail - 1 - this.fieldsBase) * FIELDS + 3];
  }

  /** Gives every row held this ts (a transaction's rows, packed before its commit gave them one). */
  retime(ts: bigint): void {
    if (this.head === this.tail) return;
    this.runTs = [ts];
    this.runEnd = [this.tail];
    this.runHead = 0;
  }

  /**
   * Visits every row held: a packed one as its slab and the offset of its bytes there (to change them in place:
   * no view is made), one kept as an object as that object.
   */
  visit(packed: (slab: Buffer, offset: number) => void, object: (row: T) => void): void {
    for (let index = this.head; index < this.tail; index++) {
      const i = (index - this.fieldsBase) * FIELDS;
      if (this.fields[i + 2] === AS_OBJECT) object(this.objects.get(index)!);
      else packed(this.slabs[this.fields[i] - this.slabsBase], this.fields[i + 1]);
    }
  }

  /**
   * Moves every row held to the end of `target`, with their ts and seqs, leaving this empty: the slabs change hands,
   * no row's bytes are copied (a big transaction handed to its table's sorter at the commit). When `target` is empty
   * it takes the fields as they are too.
   */
  moveInto(target: PackedRows<T>): void {
    if (this.head === this.tail) return;
    if (target.head === target.tail) {
      // nothing refers to an empty queue's indexes: it takes this one's as they are
      target.fields = this.fields;
      target.fieldsBase = this.fieldsBase;
      target.head = this.head;
      target.tail = this.tail;
      target.slabs = this.slabs;
      target.slabsBase = this.slabsBase;
      target.slabUsed = this.slabUsed;
      target.runTs = this.runTs;
      target.runEnd = this.runEnd;
      target.runHead = this.runHead;
      for (const [index, object] of this.objects) target.objects.set(index, object);
    } else {
      const slabShift = target.slabsBase + target.slabs.length - this.slabsBase;
      for (const slab of this.slabs) target.slabs.push(slab);
      target.slabUsed = this.slabUsed;
      for (let run = this.runHead, index = this.head; run < this.runTs.length; run++) {
        const ts = this.runTs[run];
        for (; index < this.runEnd[run]; index++) {
          const from = (index - this.fieldsBase) * FIELDS;
          const at = target.reserve() * FIELDS;
          const length = this.fields[from + 2];
          target.fields[at] = length === AS_OBJECT ? 0 : this.fields[from] + slabShift;
          target.fields[at + 1] = this.fields[from + 1];
          target.fields[at + 2] = length;
          target.fields[at + 3] = this.fields[from + 3];
          target.fields[at + 4] = this.fields[from + 4];
          if (length === AS_OBJECT) target.objects.set(target.tail, this.objects.get(index)!);
          target.appended(ts);
        }
      }
    }
    this.fields = new Uint32Array(FIELDS * 1024);
    this.fieldsBase = this.head = this.tail;
    this.slabs = [];
    this.slabUsed = SLAB_BYTES;
    this.runTs = [];
    this.runEnd = [];
    this.runHead = 0;
    this.objects.clear();
  }

  /** Drops every row held; `each` is given each one's packed length, or the row kept as an object. */
  clear(each: (packedLength: number, object: T | undefined) => void): void {
    for (let index = this.head; index < this.tail; index++) {
      const length = this.fields[(index - this.fieldsBase) * FIELDS + 2];
      if (length === AS_OBJECT) each(0, this.objects.get(index));
      else each(length, undefined);
    }
    this.objects.clear();
    this.head = this.tail;
    this.reset();
  }

  /** Empty: the fields start over (the last slab stays, for the rows to come: it is only ever appended to). */
  private reset(): void {
    this.fieldsBase = this.head;
    this.runTs = [];
    this.runEnd = [];
    this.runHead = 0;
    if (this.fields.length > KEPT_FIELDS_ROWS * FIELDS) this.fields = new Uint32Array(KEPT_FIELDS_ROWS * FIELDS);
    if (this.slabs.length > 1) {
      this.slabsBase += this.slabs.length - 1;
      this.slabs.splice(0, this.slabs.length - 1);
    }
  }

  /** The position in `fields` (in rows) for the next row: moves the held rows down, or doubles (or halves), when full. */
  private reserve(): number {
    const at = this.tail - this.fieldsBase;
    if ((at + 1) * FIELDS <= this.fields.length) return at;
    const held = this.tail - this.head;
    const from = (this.head - this.fieldsBase) * FIELDS;
    if (held * 8 * FIELDS <= this.fields.length && this.fields.length > KEPT_FIELDS_ROWS * FIELDS) {
      // a backlog's array, now mostly taken: a smaller one (twice what is held) is enough
      const smaller = new Uint32Array(Math.max(KEPT_FIELDS_ROWS, held * 2) * FIELDS);
      smaller.set(this.fields.subarray(from, at * FIELDS));
      this.fields = smaller;
    } else if (held * 2 * FIELDS <= this.fields.length) {
      this.fields.copyWithin(0, from, at * FIELDS);
    } else {
      const grown = new Uint32Array(this.fields.length * 2);
      grown.set(this.fields.subarray(from, at * FIELDS));
      this.fields = grown;
    }
    this.fieldsBase = this.head;
    return held;
  }
}
