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

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.db.close();
  }

  async destroy(): Promise<void> {
    await this.close();
    await rm(this.dir, { recursive: true, force: true });
  }
}
