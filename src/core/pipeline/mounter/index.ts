import type { ColumnInfo, RowChangedEvent, TableName, Ts } from '../../sink/api.js';
import { ColumnType, realType, type TableMap } from '../../upstream/events.js';
import type { Value } from '../../upstream/rows.js';
import { BugIndicatingError } from '../../errors/index.js';
import { decodeRow, rowMapVersion, type SortedRow } from '../row-codec.js';

const BINARY = 63;

/** The MySQL type of a column as far as the binlog tells it (TABLE_MAP type, metadata and optional metadata). */
export function mysqlTypeOf(map: TableMap, i: number): string {
  const meta = map.meta[i];
  const unsigned = map.unsigned[i] === true ? ' unsigned' : '';
  const binary = map.charsets.get(i) === BINARY;
  switch (realType(map.types[i], meta)) {
    case ColumnType.TINY: return `tinyint${unsigned}`;
    case ColumnType.SHORT: return `smallint${unsigned}`;
    case ColumnType.INT24: return `mediumint${unsigned}`;
    case ColumnType.LONG: return `int${unsigned}`;
    case ColumnType.LONGLONG: return `bigint${unsigned}`;
    case ColumnType.FLOAT: return `float${unsigned}`;
    case ColumnType.DOUBLE: return `double${unsigned}`;
    case ColumnType.NEWDECIMAL: return `decimal(${meta >> 8},${meta & 0xff})${unsigned}`;
    case ColumnType.YEAR: return 'year';
    case ColumnType.DATE: return 'date';
    case ColumnType.TIME2: return meta > 0 ? `time(${meta})` : 'time';
    case ColumnType.DATETIME2: return meta > 0 ? `datetime(${meta})` : 'datetime';
    case ColumnType.TIMESTAMP2: return meta > 0 ? `timestamp(${meta})` : 'timestamp';
    case ColumnType.BIT: return `bit(${(meta >> 8) * 8 + (meta & 0xff)})`;
    case ColumnType.VARCHAR: case ColumnType.VAR_STRING: return binary ? `varbinary(${meta})` : 'varchar';
    case ColumnType.STRING: return binary ? 'binary' : 'char';
    case ColumnType.ENUM: return `enum(${(map.enumValues.get(i) ?? []).map(quote).join(',')})`;
    case ColumnType.SET: return `set(${(map.setValues.get(i) ?? []).map(quote).join(',')})`;
    case ColumnType.BLOB: return binary ? ['', 'tinyblob', 'blob', 'mediumblob', 'longblob'][meta] ?? 'blob' : ['', 'tinytext', 'text', 'mediumtext', 'longtext'][meta] ?? 'text';
    case ColumnType.JSON: return 'json';
    case ColumnType.GEOMETRY: return 'geometry';
    default: return `type${map.types[i]}`;
  }
}

function quote(s: string): string {
  return `'${s.replaceAll("'", "''")}'`;
}

const columnCache = new WeakMap<TableMap, readonly ColumnInfo[]>();

/**
 * The columns of a table as the binlog describes them: names from the full row metadata (a schema storage
 * by ts is needed when the server does not send them), MySQL types, primary key and nullability. Cached per
 * TABLE_MAP, so rows of the same table share one array.
 */
export function columnsOf(map: TableMap): readonly ColumnInfo[] {
  let columns = columnCache.get(map);
  if (columns === undefined) {
    const pk = new Set(map.primaryKey);
    columns = Array.from({ length: map.columnCount }, (_, i) => ({
      name: map.names?.[i] ?? `@${i + 1}`,
      mysqlType: mysqlTypeOf(map, i),
      primaryKey: pk.has(i),
      nullable: map.nullable[i] ?? true,
    }));
    columnCache.set(map, columns);
  }
  return columns;
}

/** A raw row change (the puller's) made into a typed RowChangedEvent once its transaction's commit ts is known. */
export function mountRow(
  raw: { readonly table: TableMap; readonly change: 'insert' | 'update' | 'delete'; readonly before: Value[] | null; readonly after: Value[] | null; readonly seq: number },
  table: TableName,
  commitTs: Ts,
  commitTime: number,
): RowChangedEvent {
  return { table, commitTs, commitTime, seq: raw.seq, kind: raw.change, columns: columnsOf(raw.table), before: raw.before, after: raw.after };
}

/**
 * The mounter of one processor (DESIGN §5): the one place a sorted row change becomes the RowChangedEvent a sink
 * gets. The puller registers the TABLE_MAP each row was read with (`versionOf`, a small number that travels with
 * the row, also through the spill files); `mount` decodes the row's binlog image once, with that TABLE_MAP, and
 * gives it its table name, commit ts and columns (cached per map).
 */
export class Mounter {
  private readonly versions = new Map<TableMap, number>();
  private readonly maps: TableMap[] = [];

  versionOf(map: TableMap): number {
    let version = this.versions.get(map);
    if (version === undefined) {
      this.maps.push(map);
      version = this.maps.length;
      this.versions.set(map, version);
    }
    return version;
  }

  mount(table: TableName, commitTs: Ts, seq: number, row: SortedRow): RowChangedEvent {
    const version = rowMapVersion(row);
    const map = this.maps[version - 1];
    if (map === undefined) throw new BugIndicatingError(`no TABLE_MAP version ${version} for a row of ${table.schema}.${table.table}`);
    const decoded = decodeRow(row, map);
    return { table, commitTs, commitTime: decoded.commitTime, seq, kind: decoded.kind, columns: columnsOf(map), before: decoded.before, after: decoded.after };
  }
}
