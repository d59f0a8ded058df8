import { rm, mkdir } from 'node:fs/promises';
import { ClassicLevel } from 'classic-level';
import { TidemarkError } from '../../errors/index.js';

/** Key of a spilled event: table id (u32) | ts (u64) | seq (u32), big-endian, so LevelDB's order is ts order. */
export const KEY_BYTES = 16;

export function encodeKey(tableId: number, ts: bigint, seq: number, into: Buffer = Buffer.allocUnsafe(KEY_BYTES)): Buffer {
  into.writeUInt32BE(tableId, 0);
  into.writeBigUInt64BE(ts, 4);
  into.writeUInt32BE(seq, 12);
  return into;
}

export function tablePrefix(tableId: number): { gte: Buffer; lt: Buffer } {
  const gte = Buffer.alloc(4);
  gte.writeUInt32BE(tableId, 0);
  const lt = Buffer.alloc(4);
  if (tableId === 0xffffffff) return { gte, lt: Buffer.alloc(KEY_BYTES + 1, 0xff) };
  lt.writeUInt32BE(tableId + 1, 0);
  return { gte, lt };
}

/**
 * The on-disk half of a changefeed's sorters: one LevelDB under `<data-dir>/sorter/<changefeed>`.
 * `destroy()` closes it and deletes the folder (changefeed removed); `close()` keeps the files.
 */
export class SpillStore {
  private closed = false;
  /** The compactions asked for, run one after the other. */
  private compactions: Promise<void> = Promise.resolve();

  private constructor(
    readonly dir: string,
    readonly db: ClassicLevel<Buffer, Buffer>,
  ) {}

  static async open(dir: string): Promise<SpillStore> {
    await rm(dir, { recursive: true, force: true }); // spilled data never outlives its process: tables restart from their checkpoint
    await mkdir(dir, { recursive: true });
    const db = new ClassicLevel<Buffer, Buffer>(dir, {
      keyEncoding: 'buffer',
      valueEncoding: 'buffer',
      createIfMissing: true,
      // spilled blocks are written once, read once, then deleted: a big memtable and no compression keep that cheap
      writeBufferSize: 16 * 1024 * 1024,
      compression: false,
    });
    try {
      await db.open();
    } catch (error) {
      throw new TidemarkError('ErrConfigInvalid', `cannot open the sorter's spill store in ${dir}: ${(error as Error).message}`, { cause: error });
    }
    return new SpillStore(dir, db);
  }

  get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Compacts the keys in [from, to] once the compactions asked for before are done, so LevelDB drops what was
   * deleted there. A delete only writes a tombstone: the table files keep the data, and LevelDB (1.20 in
   * classic-level) reads table files through mmap (up to 1000 of them), so every spilled block read back stays
   * resident in the process until a compaction rewrites its file without it and deletes (unmaps) the file. Reads
   * and deletes never trigger that compaction by themselves, hence this. One at a time: LevelDB runs manual
   * compactions one by one and each one waiting would hold a thread of libuv's pool. Resolves, never rejects;
   * after `close()` it does nothing.
   */
  compact(from: Buffer, to: Buffer): Promise<void> {
    const run = this.compactions.then(async () => {
      if (!this.closed) await this.db.compactRange(from, to);
    });
    this.compactions = run.catch(() => undefined); // only fails when the database is closing: nothing to drop then
    return this.compactions;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.compactions;
    await this.db.close();
  }

  async destroy(): Promise<void> {
    await this.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}
