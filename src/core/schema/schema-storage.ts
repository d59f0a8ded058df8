import type mysql from 'mysql2/promise';
import { SYSTEM_SCHEMAS } from '../config/table-filter.js';
import type { Upstream } from '../upstream/upstream.js';
import { TidemarkError } from '../errors/index.js';
import { silentLogger, type Logger } from '../logger/logger.js';
import { formatCoordinate, type Ts } from '../model/ts.js';
import { endOfBinlog } from '../upstream/binlog-position.js';
import { ColumnType, realType, type TableMap } from '../upstream/events.js';
import { classifyDDL } from './ddl.js';
import { applyAlter, databaseOptions, parseCreateTable, UntrackableDDL } from './ddl-parser.js';
import { readTableSchemas, type TableSchema } from './table-schema.js';

/** A table's definition from a ts on; `null`: dropped; `stale`: a DDL changed it in a way not tracked. */
interface Version {
  readonly ts: Ts;
  readonly table: TableSchema | null | { readonly stale: string };
}

export interface SchemaStorageJSON {
  readonly coveredFrom: string;
  readonly serverCharset: string;
  readonly databases: Record<string, string>;
  readonly tables: Record<string, { ts: string; table: TableSchema | null | { stale: string } }[]>;
  readonly unknownBefore: Record<string, string>;
  /** The last DDL followed (absent in storages written before it was kept). */
  readonly lastDDLTs?: string;
}

/** Reads a table's current definition from the upstream (when a DDL could not be tracked). */
export type TableLoader = (schema: string, table: string) => Promise<TableSchema | undefined>;

const keyOf = (schema: string, table: string): string => `${schema}.${table}`;

/**
 * The upstream's table definitions by ts (DESIGN §5, "schema storage"): what the mounter needs when the
 * binlog does not carry column names, signedness, ENUM/SET members, charsets and the primary key
 * (binlog_row_metadata MINIMAL or NO_LOG, MariaDB's default). It starts from a snapshot of
 * information_schema taken at a known binlog position and then follows every DDL in the binlog, so a row is
 * mounted with the definition its table had when the row was written, not the definition of "now". The owner
 * keeps one for every changefeed, also on upstreams with full metadata: `tablesAt` gives the tables as they
 * were at a checkpoint (a table renamed since is scheduled under its old name until its RENAME is read).
 *
 * What it cannot know, it says: a ts before the snapshot, or a table changed by a DDL it could not follow
 * and whose current definition no longer matches the binlog, is a typed error, never a guess.
 */
export class SchemaStorage {
  private readonly versions = new Map<string, Version[]>();
  private readonly unknownBefore = new Map<string, Ts>();
  private readonly databases = new Map<string, string>();
  private lastDDLTs = -1n;
  loader: TableLoader | undefined;
  /**
   * The tables whose TABLE_MAPs are completed (a changefeed's filter); others are left as the binlog gave them,
   * so a table nobody replicates (the mysql schema's own, say) never stops a reader. Default: every table.
   */
  tableFilter: ((schema: string, table: string) => boolean) | undefined;
  log: Logger = silentLogger;

  private constructor(
    /** The first ts the storage answers for. */
    public coveredFrom: Ts,
    readonly serverCharset: string,
  ) {}

  /** A storage holding `tables` from `coveredFrom` on. */
  static fromTables(coveredFrom: Ts, tables: Iterable<TableSchema>, databases: Iterable<[string, string]> = [], serverCharset = 'utf8mb4'): SchemaStorage {
    const s = new SchemaStorage(coveredFrom, serverCharset);
    for (const t of tables) s.versions.set(keyOf(t.schema, t.table), [{ ts: -1n, table: t }]);
    for (const [db, cs] of databases) s.databases.set(db, cs);
    return s;
  }

  /**
   * Takes the snapshot: the definitions of every table outside the system schemas, consistent with a binlog
   * position. The position is read before and after; when they differ, the DDL in between (read with
   * `ddlBetween`) must touch none of the tables, or the snapshot is taken again.
   */
  static async snapshot(
    upstream: Upstream,
    ddlBetween: (from: Ts, to: Ts) => Promise<readonly { ts: Ts; schema: string; query: string }[]>,
    attempts = 5,
  ): Promise<SchemaStorage> {
    let conn: mysql.Connection;
    try {
      conn = await upstream.connect({ connectTimeout: 5000 });
    } catch (error) {
      throw upstream.unreachable('read the schema', error);
    }
    try {
      for (let attempt = 1; ; attempt++) {
        const { ts: before } = await endOfBinlog(conn);
        const tables = await readTableSchemas(conn, SYSTEM_SCHEMAS);
        const [dbs] = await conn.query<mysql.RowDataPacket[]>('SELECT SCHEMA_NAME n, DEFAULT_CHARACTER_SET_NAME c FROM information_schema.SCHEMATA');
        const [server] = await conn.query<mysql.RowDataPacket[]>('SELECT @@character_set_server c');
        const { ts: after } = await endOfBinlog(conn);
        const ddl = after === before ? [] : await ddlBetween(before, after);
        if (ddl.length === 0 || attempt >= attempts) {
          if (ddl.length > 0) {
            throw new TidemarkError('ErrSchemaUnknown', `cannot take a consistent schema snapshot of ${upstream.shown}: DDL ran during each of ${attempts} attempts`, { retryable: true });
          }
          const storage = SchemaStorage.fromTables(before, tables.values(), dbs.map((r) => [String(r['n']), String(r['c']).toLowerCase()]), String(server[0]['c']).toLowerCase());
          storage.loader = SchemaStorage.upstreamLoader(upstream);
          return storage;
        }
      }
    } finally {
      await conn.end().catch(() => undefined);
    }
  }

  /** Reads one table's current definition from `upstream` (for `loader`). */
  static upstreamLoader(upstream: Upstream): TableLoader {
    return (schema, table) => upstream.with(`read the definition of ${schema}.${table}`, async (c) => (await readTableSchemas(c, SYSTEM_SCHEMAS, { schema, table })).get(keyOf(schema, table)));
  }

  /** The last DDL statement followed (its ts), or -1. */
  get lastDDL(): Ts {
    return this.lastDDLTs;
  }

  /**
   * Forgets what no reader starting at `ts` or later can ask for: per table, the versions before the last
   * one older than `ts`, and tables dropped before `ts`. The storage then answers from `ts` on.
   */
  compact(ts: Ts): void {
    if (ts <= this.coveredFrom) return;
    for (const [key, list] of this.versions) {
      let keep = 0;
      for (let i = 0; i < list.length; i++) if (list[i].ts < ts) keep = i;
      if (keep > 0) list.splice(0, keep);
      if (list.length === 1 && list[0].table === null && list[0].ts < ts) this.versions.delete(key);
    }
    for (const [key, before] of this.unknownBefore) if (before <= ts) this.unknownBefore.delete(key);
    this.coveredFrom = ts;
  }

  /**
   * Extends the storage back to `from` < coveredFrom: `ddl` are the DDL statements between `from` and the
   * snapshot. Tables they touch are unknown before their last such DDL (the snapshot already holds its
   * effect, and the definition before it cannot be derived); all other tables are as in the snapshot.
   */
  extendBack(from: Ts, ddl: readonly { ts: Ts; schema: string; query: string }[]): void {
    if (from >= this.coveredFrom) return;
    for (const d of ddl) {
      if (d.ts >= this.coveredFrom) continue;
      const c = classifyDDL(d.query, d.schema);
      const touched = [...c.tables, ...c.renamedTo].map((t) => keyOf(t.schema, t.table));
      if (c.database !== undefined) for (const k of this.versions.keys()) if (k.startsWith(`${c.database}.`)) touched.push(k);
      for (const k of touched) if ((this.unknownBefore.get(k) ?? -1n) < d.ts) this.unknownBefore.set(k, d.ts);
    }
    this.coveredFrom = from;
  }

  /** Tables whose definition is unknown before a ts (a DDL between the storage's start and its snapshot). */
  unknownTables(): { schema: string; table: string; before: Ts }[] {
    return [...this.unknownBefore].filter(([, before]) => before > this.coveredFrom).map(([key, before]) => {
      const dot = key.indexOf('.');
      return { schema: key.slice(0, dot), table: key.slice(dot + 1), before };
    });
  }

  /** The table's definition for a row at position `ts` (a TABLE_MAP's position); undefined: no such table. */
  tableAt(schema: string, table: string, ts: Ts): TableSchema | { readonly stale: string } | undefined {
    const key = keyOf(schema, table);
    if (ts < this.coveredFrom) {
      throw new TidemarkError('ErrSchemaUnknown', `no table definitions before ${formatCoordinate(ts)}: the schema storage starts at ${formatCoordinate(this.coveredFrom)}`);
    }
    const unknown = this.unknownBefore.get(key);
    if (unknown !== undefined && ts < unknown) {
      throw new TidemarkError(
        'ErrSchemaUnknown',
        `the definition of ${key} before ${formatCoordinate(unknown)} is unknown: a DDL changed it there and the schema snapshot was taken after it; without binlog_row_metadata=FULL its rows before that DDL cannot be mounted (start at or after ${formatCoordinate(unknown)}, or set binlog_row_metadata=FULL)`,
      );
    }
    const list = this.versions.get(key);
    if (list === undefined) return undefined;
    for (let i = list.length - 1; i >= 0; i--) if (list[i].ts < ts) return list[i].table ?? undefined;
    return undefined;
  }

  /** The tables that exist once everything up to `ts` (a commit's position) is applied. */
  tablesAt(ts: Ts): { schema: string; table: string }[] {
    const out: { schema: string; table: string }[] = [];
    for (const [key, list] of this.versions) {
      let version: Version | undefined;
      for (let i = list.length - 1; i >= 0 && version === undefined; i--) if (list[i].ts <= ts) version = list[i];
      if (version === undefined || version.table === null) continue;
      if ('stale' in version.table) {
        const dot = key.indexOf('.');
        out.push({ schema: key.slice(0, dot), table: key.slice(dot + 1) });
      } else {
        out.push({ schema: version.table.schema, table: version.table.table });
      }
    }
    return out;
  }

  private put(key: string, ts: Ts, table: Version['table']): void {
    let list = this.versions.get(key);
    if (list === undefined) this.versions.set(key, (list = []));
    list.push({ ts, table });
  }

  private current(key: string): Version['table'] | undefined {
    const list = this.versions.get(key);
    return list?.[list.length - 1]?.table;
  }

  /**
   * Follows a DDL statement at `ts` (its QUERY event's end position) run with default schema `schema`.
   * Returns whether a table definition changed (TABLE_MAP caches must then be dropped). A statement already
   * applied (ts ≤ the last one, after a reconnect) is ignored; one before the snapshot changes nothing.
   */
  applyDDL(ts: Ts, schema: string, query: string): boolean {
    if (ts <= this.lastDDLTs || ts < this.coveredFrom) return false;
    this.lastDDLTs = ts;
    const c = classifyDDL(query, schema);
    const dbCharset = (db: string): string => this.databases.get(db) ?? this.serverCharset;
    switch (c.kind) {
      case 'create-database': {
        if (c.database !== undefined) this.databases.set(c.database, databaseOptions(query, schema)?.charset ?? this.serverCharset);
        return false;
      }
      case 'drop-database': {
        let changed = false;
        for (const key of this.versions.keys()) {
          if (key.startsWith(`${c.database}.`) && this.current(key) !== null) {
            this.put(key, ts, null);
            changed = true;
          }
        }
        if (c.database !== undefined) this.databases.delete(c.database);
        return changed;
      }
      case 'create-table': {
        const name = c.tables[0];
        const key = keyOf(name.schema, name.table);
        const existing = this.current(key);
        if (existing !== undefined && existing !== null && /^\s*create\s+table\s+if\s+not\s+exists/iu.test(query.replace(/\/\*[\s\S]*?\*\//gu, ' '))) return false;
        try {
          this.put(key, ts, parseCreateTable(query, schema, dbCharset(name.schema)));
        } catch (error) {
          this.untracked(key, ts, query, error);
        }
        return true;
      }
      case 'drop-table': {
        for (const t of c.tables) this.put(keyOf(t.schema, t.table), ts, null);
        return true;
      }
      case 'rename-table': {
        if (/^\s*alter/iu.test(query)) return this.alter(c.tables[0], ts, schema, query);
        c.tables.forEach((from, i) => {
          const to = c.renamedTo[i];
          const table = this.current(keyOf(from.schema, from.table));
          this.put(keyOf(from.schema, from.table), ts, null);
          this.put(keyOf(to.schema, to.table), ts, table === undefined || table === null || 'stale' in table ? (table ?? { stale: query }) : { ...table, schema: to.schema, table: to.table });
        });
        return true;
      }
      case 'alter-table':
        return this.alter(c.tables[0], ts, schema, query);
      default: {
        // ALTER DATABASE … CHARACTER SET: the default for tables created later
        const altered = databaseOptions(query, schema);
        if (altered?.charset !== undefined) this.databases.set(altered.database, altered.charset);
        return false;
      }
    }
  }

  private alter(name: { schema: string; table: string }, ts: Ts, schema: string, query: string): boolean {
    const key = keyOf(name.schema, name.table);
    const table = this.current(key);
    if (table === undefined || table === null) return false;
    if ('stale' in table) {
      this.put(key, ts, { stale: query });
      return true;
    }
    if (/^\s*(?:create|drop)\s/iu.test(query)) return false; // CREATE / DROP INDEX
    try {
      const result = applyAlter(query, schema, table);
      if (result.renamedTo !== undefined) {
        this.put(key, ts, null);
        this.put(keyOf(result.renamedTo.schema, result.renamedTo.table), ts, { ...result.table, schema: result.renamedTo.schema, table: result.renamedTo.table });
      } else {
        this.put(key, ts, result.table);
      }
    } catch (error) {
      this.untracked(key, ts, query, error);
    }
    return true;
  }

  private untracked(key: string, ts: Ts, query: string, error: unknown): void {
    if (!(error instanceof UntrackableDDL)) throw error;
    this.log.warn('cannot follow a DDL: the table will be read again from the upstream when its rows come', { table: key, ts: String(ts), reason: error.message, ddl: query.slice(0, 200) });
    this.put(key, ts, { stale: query });
  }

  /**
   * The TABLE_MAP with what the binlog left out (names, signedness, ENUM/SET members, charsets, primary key)
   * filled in from the definition at `ts` (the TABLE_MAP's position), after checking that the definition
   * matches the binlog's column count and types. A table changed by a DDL that could not be followed is read
   * again from the upstream (with `loader`) and checked the same way.
   */
  async complete(map: TableMap, ts: Ts): Promise<TableMap> {
    if (this.tableFilter?.(map.schema, map.table) === false) return map;
    const key = keyOf(map.schema, map.table);
    let table = this.tableAt(map.schema, map.table, ts);
    let reloaded: string | undefined;
    if (table === undefined || 'stale' in table) {
      reloaded = table === undefined ? 'not in the schema storage' : `after a DDL that could not be followed (${table.stale.slice(0, 120)})`;
      const loaded = await this.loader?.(map.schema, map.table);
      if (loaded === undefined) {
        throw new TidemarkError('ErrSchemaUnknown', `the definition of ${key} at ${formatCoordinate(ts)} is unknown (${reloaded}) and the upstream has no such table now; set binlog_row_metadata=FULL on the upstream`);
      }
      table = loaded;
    }
    const mismatch = compare(map, table);
    if (mismatch !== undefined) {
      throw new TidemarkError(
        'ErrSchemaMismatch',
        `the definition of ${key} at ${formatCoordinate(ts)}${reloaded === undefined ? '' : ` (read again from the upstream: ${reloaded})`} does not match the binlog: ${mismatch}; set binlog_row_metadata=FULL on the upstream`,
      );
    }
    if (reloaded !== undefined) {
      this.log.warn('table definition read again from the upstream', { table: key, ts: String(ts), reason: reloaded });
      this.put(key, ts - 1n, table);
    }
    return fill(map, table);
  }

  toJSON(): SchemaStorageJSON {
    return {
      coveredFrom: String(this.coveredFrom),
      serverCharset: this.serverCharset,
      databases: Object.fromEntries(this.databases),
      tables: Object.fromEntries([...this.versions].map(([k, list]) => [k, list.map((v) => ({ ts: String(v.ts), table: v.table }))])),
      unknownBefore: Object.fromEntries([...this.unknownBefore].map(([k, ts]) => [k, String(ts)])),
      lastDDLTs: String(this.lastDDLTs),
    };
  }

  static fromJSON(json: SchemaStorageJSON): SchemaStorage {
    const s = new SchemaStorage(BigInt(json.coveredFrom), json.serverCharset);
    for (const [db, cs] of Object.entries(json.databases)) s.databases.set(db, cs);
    for (const [k, list] of Object.entries(json.tables)) s.versions.set(k, list.map((v) => ({ ts: BigInt(v.ts), table: v.table })));
    for (const [k, ts] of Object.entries(json.unknownBefore)) s.unknownBefore.set(k, BigInt(ts));
    if (json.lastDDLTs !== undefined) s.lastDDLTs = BigInt(json.lastDDLTs);
    return s;
  }
}

/** The binlog types a column of each base type can have (MySQL and MariaDB, old and new temporal formats). */
const BINLOG_TYPES: Record<string, readonly number[]> = {
  tinyint: [ColumnType.TINY], smallint: [ColumnType.SHORT], mediumint: [ColumnType.INT24], int: [ColumnType.LONG], bigint: [ColumnType.LONGLONG],
  float: [ColumnType.FLOAT], double: [ColumnType.DOUBLE], decimal: [ColumnType.NEWDECIMAL, ColumnType.DECIMAL], bit: [ColumnType.BIT],
  date: [ColumnType.DATE, ColumnType.NEWDATE], time: [ColumnType.TIME2, ColumnType.TIME], datetime: [ColumnType.DATETIME2, ColumnType.DATETIME],
  timestamp: [ColumnType.TIMESTAMP2, ColumnType.TIMESTAMP], year: [ColumnType.YEAR],
  char: [ColumnType.STRING], binary: [ColumnType.STRING], uuid: [ColumnType.STRING], inet6: [ColumnType.STRING], inet4: [ColumnType.STRING],
  varchar: [ColumnType.VARCHAR, ColumnType.VAR_STRING], varbinary: [ColumnType.VARCHAR, ColumnType.VAR_STRING],
  tinytext: [ColumnType.BLOB], text: [ColumnType.BLOB], mediumtext: [ColumnType.BLOB], longtext: [ColumnType.BLOB],
  tinyblob: [ColumnType.BLOB], blob: [ColumnType.BLOB], mediumblob: [ColumnType.BLOB], longblob: [ColumnType.BLOB],
  json: [ColumnType.JSON, ColumnType.BLOB], enum: [ColumnType.ENUM], set: [ColumnType.SET],
  geometry: [ColumnType.GEOMETRY], point: [ColumnType.GEOMETRY], linestring: [ColumnType.GEOMETRY], polygon: [ColumnType.GEOMETRY],
  multipoint: [ColumnType.GEOMETRY], multilinestring: [ColumnType.GEOMETRY], multipolygon: [ColumnType.GEOMETRY],
  geometrycollection: [ColumnType.GEOMETRY], geomcollection: [ColumnType.GEOMETRY],
};

function compare(map: TableMap, table: TableSchema): string | undefined {
  if (map.columnCount !== table.columns.length) {
    return `the binlog has ${map.columnCount} columns, the definition ${table.columns.length} (${table.columns.map((c) => c.name).join(', ')})`;
  }
  for (let i = 0; i < map.columnCount; i++) {
    const col = table.columns[i];
    const allowed = BINLOG_TYPES[col.dataType];
    const type = realType(map.types[i], map.meta[i]);
    if (allowed !== undefined && !allowed.includes(type)) return `column ${i + 1} (${col.name} ${col.columnType}) has binlog type ${type}`;
    if (map.names !== undefined && map.names[i] !== col.name) return `column ${i + 1} is ${map.names[i]} in the binlog, ${col.name} in the definition`;
  }
  return undefined;
}

/** Collation ids the row decoder understands, for a character set name. */
function collationId(charset: string | null): number | undefined {
  switch (charset) {
    case null: return undefined;
    case 'binary': return 63;
    case 'latin1': return 8;
    case 'ascii': return 11;
    case 'utf8': case 'utf8mb3': return 33;
    default: return 45;
  }
}

function fill(map: TableMap, table: TableSchema): TableMap {
  const enumValues = new Map(map.enumValues);
  const setValues = new Map(map.setValues);
  const charsets = new Map(map.charsets);
  table.columns.forEach((col, i) => {
    if (col.dataType === 'enum' && !enumValues.has(i) && col.values !== undefined) enumValues.set(i, col.values);
    if (col.dataType === 'set' && !setValues.has(i) && col.values !== undefined) setValues.set(i, col.values);
    const cs = collationId(col.charset);
    if (cs !== undefined && !charsets.has(i)) charsets.set(i, cs);
  });
  const pk = new Map(table.columns.map((c, i) => [c.name.toLowerCase(), i]));
  return {
    ...map,
    names: table.columns.map((c) => c.name),
    // the binlog's signedness (MINIMAL metadata) when it says unsigned, the definition's otherwise
    unsigned: table.columns.map((c, i) => map.unsigned[i] === true || c.unsigned),
    primaryKey: map.primaryKey.length > 0 ? map.primaryKey : table.primaryKey.map((k) => pk.get(k.toLowerCase())!).filter((i) => i !== undefined),
    enumValues,
    setValues,
    charsets,
  };
}
