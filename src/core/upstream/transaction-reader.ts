import { makeTs, type Ts } from '../model/ts.js';
import { TidemarkError } from '../errors/index.js';
import { EventType, type RawBinlogEvent } from './binlog-reader.js';
import { decodeQuery, decodeTableMap, decodingBytes, hasFixedBinaryCandidates, withDataTypes, type TableMap } from './events.js';
import { locateRows, type RowsLayout } from './rows.js';

/**
 * What the reader needs of the schema storage (schema/schema-storage.ts), which sits above the upstream: table
 * maps completed with column names where the binlog lacks them, and each DDL applied as it is read.
 */
export interface SchemaTracker {
  complete(map: TableMap, ts: Ts): Promise<TableMap>;
  /** True when the DDL changed what a table map's bytes mean (table maps are decoded again). */
  applyDDL(ts: Ts, schema: string, query: string): boolean;
}

/** A table's column definitions as the upstream has them now (for the UUID/INET6/INET4 columns). */
export type TableDefinitionLoader = (schema: string, table: string) => Promise<{ readonly columns: readonly { readonly name: string; readonly dataType: string }[] } | undefined>;

export type UpstreamEvent =
  /**
   * The row changes of one rows event of the transaction in progress, in binlog order, located but not decoded
   * (the mounter decodes them once, at the sink); their ts comes with the transaction's commit. `seq` is the first
   * row's number in the transaction (the next row's is seq + 1). One event per binlog rows event, not per row: a
   * consumer pays one await for a few hundred rows.
   */
  | { readonly kind: 'rows'; readonly layout: RowsLayout; readonly seq: number }
  /** The commit of the transaction whose rows came before: ts = its XID/COMMIT end position. */
  | { readonly kind: 'commit'; readonly ts: Ts; readonly commitTime: number; readonly rows: number }
  /** A statement outside a transaction (DDL), with its default schema. */
  | { readonly kind: 'ddl'; readonly ts: Ts; readonly commitTime: number; readonly schema: string; readonly query: string }
  /** Nothing is pending up to ts: heartbeats when the upstream is idle (time = now). */
  | { readonly kind: 'resolved'; readonly ts: Ts; readonly time: number };

const ROWS = new Set<number>([
  EventType.WRITE_ROWS_V1, EventType.UPDATE_ROWS_V1, EventType.DELETE_ROWS_V1,
  EventType.WRITE_ROWS_V2, EventType.UPDATE_ROWS_V2, EventType.DELETE_ROWS_V2,
]);

export interface ReadTransactionsOptions {
  /** false: row events are skipped undecoded. */
  readonly rows?: boolean;
  /**
   * Where column names, signedness, ENUM/SET members and charsets come from when the binlog's TABLE_MAP
   * does not carry them (binlog_row_metadata below FULL); it follows the DDL read here.
   */
  readonly schema?: SchemaTracker;
  /**
   * A table's current definition, asked for a TABLE_MAP that has BINARY(16)/BINARY(4) columns (once per table
   * version): MariaDB's UUID, INET6 and INET4 look like those in the binlog, only the definition tells them apart.
   */
  readonly definitions?: TableDefinitionLoader;
}

/**
 * Turns binlog events into row changes, commits with their ts, DDL and resolved-ts (DESIGN §2, §5). Rows
 * stream out a rows event at a time as they are read, so a huge transaction never has to fit in memory; the
 * consumer (the sorter) holds them until the commit gives their ts.
 */
export async function* readTransactions(events: AsyncIterable<RawBinlogEvent> & { readonly mariadb?: boolean }, options: ReadTransactionsOptions = {}): AsyncGenerator<UpstreamEvent> {
  const wantRows = options.rows ?? true;
  const storage = options.schema;
  const tables = new Map<bigint, TableMap>();
  const tableMapBodies = new Map<number, Buffer>();
  let inTransaction = false;
  let seq = 0;
  let lastTs: Ts | undefined;
  for await (const e of events) {
    switch (e.type) {
      case EventType.TABLE_MAP: {
        if (!wantRows) break;
        // the server repeats a table's TABLE_MAP in every transaction: the same bytes keep the same object,
        // so column lists and mounter caches are built once per table version, not once per transaction
        if (e.body.length < 8) throw new TidemarkError('ErrBinlogCorrupt', `TABLE_MAP event of ${e.body.length} bytes at ${e.file}:${e.startPos}`);
        const tableId = e.body.readUIntLE(0, 6);
        const previous = tableMapBodies.get(tableId);
        if (previous !== undefined && previous.equals(e.body)) break;
        let map = decodingBytes(() => `the TABLE_MAP event at ${e.file}:${e.startPos}`, () => decodeTableMap(e.body, { mariadb: events.mariadb ?? true }));
        if (storage !== undefined && map.names === undefined) map = await storage.complete(map, makeTs(e.fileSeq, e.endPos));
        if (options.definitions !== undefined && hasFixedBinaryCandidates(map)) map = withDataTypes(map, await definitionOf(options.definitions, map));
        tables.set(map.tableId, map);
        tableMapBodies.set(tableId, Buffer.from(e.body));
        break;
      }
      case EventType.QUERY: {
        const { schema, query } = decodingBytes(() => `the QUERY event at ${e.file}:${e.startPos}`, () => decodeQuery(e.body));
        if (query === 'BEGIN') {
          inTransaction = true;
          seq = 0;
        } else if (query === 'COMMIT' || query === 'ROLLBACK') {
          inTransaction = false;
          lastTs = makeTs(e.fileSeq, e.endPos);
          yield { kind: 'commit', ts: lastTs, commitTime: e.timestamp * 1000, rows: seq };
        } else if (!inTransaction) {
          lastTs = makeTs(e.fileSeq, e.endPos);
          // a table definition changed: TABLE_MAPs with the same bytes must be completed again
          if (storage?.applyDDL(lastTs, schema, query) === true) tableMapBodies.clear();
          // the same bytes may now mean BINARY(16) where they meant UUID (or back): such tables are asked again
          else if (options.definitions !== undefined) for (const map of tables.values()) if (hasFixedBinaryCandidates(map)) tableMapBodies.delete(Number(map.tableId));
          yield { kind: 'ddl', ts: lastTs, commitTime: e.timestamp * 1000, schema, query };
        }
        break;
      }
      case EventType.XID:
        inTransaction = false;
        lastTs = makeTs(e.fileSeq, e.endPos);
        yield { kind: 'commit', ts: lastTs, commitTime: e.timestamp * 1000, rows: seq };
        break;
      case EventType.MARIADB_GTID:
        // MariaDB starts a transaction with a GTID event; BEGIN may be implied (flag FL_STANDALONE off)
        inTransaction = (e.body[12] & 0x01) === 0;
        seq = 0;
        break;
      case EventType.HEARTBEAT:
        if (!inTransaction && lastTs !== undefined) {
          // the server sent every event before the reader's position: after a rotate (FLUSH BINARY LOGS,
          // max_binlog_size) that is the next file's, where no commit is yet, and an idle upstream's checkpoint
          // could not reach its end of binlog until the next write
          const at = makeTs(e.fileSeq, e.endPos);
          if (at > lastTs) lastTs = at;
          yield { kind: 'resolved', ts: lastTs, time: Date.now() };
        }
        break;
      default:
        if (wantRows && ROWS.has(e.type)) {
          const layout = decodingBytes(() => `the rows event (type ${e.type}) at ${e.file}:${e.startPos}`, () => locateRows(e.type, e.body, tables));
          const first = seq;
          seq += layout.ends.length;
          yield { kind: 'rows', layout, seq: first };
        }
    }
  }
}

/** The definition of a TABLE_MAP's table; an upstream that cannot be asked is a retryable error (the read starts again). */
async function definitionOf(load: TableDefinitionLoader, map: TableMap): Promise<readonly { readonly name: string; readonly dataType: string }[] | undefined> {
  try {
    return (await load(map.schema, map.table))?.columns;
  } catch (error) {
    if (error instanceof TidemarkError) throw error;
    throw new TidemarkError('ErrUpstreamUnreachable', `cannot read the definition of ${map.schema}.${map.table} (for its UUID/INET6/INET4 columns): ${(error as Error).message}`, { cause: error });
  }
}
