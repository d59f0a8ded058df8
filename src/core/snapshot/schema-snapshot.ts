import type mysql from 'mysql2/promise';
import { TidemarkError } from '../errors/index.js';
import type { Upstream } from '../upstream/upstream.js';
import { classifyDDL, type QualifiedName } from '../schema/ddl.js';
import type { DDLEvent, Sink, Ts } from '../sink/api.js';
import { readDDLBetween, type ResumableReaderOptions } from '../upstream/resumable-reader.js';
import type { Logger } from '../logger/logger.js';

/** The upstream definitions of a changefeed's tables, valid at `ts` (no DDL on them between `ts` and the read). */
export interface SchemaSnapshot {
  readonly ts: Ts;
  /** `CREATE DATABASE IF NOT EXISTS …` per database that holds a selected table, as the upstream defines it. */
  readonly databases: readonly { readonly schema: string; readonly query: string }[];
  /** `CREATE TABLE …` per selected table, as `SHOW CREATE TABLE` gives it (unqualified: it runs in its database). */
  readonly tables: readonly (QualifiedName & { readonly query: string })[];
}

const quote = (ident: string): string => `\`${ident.replaceAll('`', '``')}\``;

/**
 * Reads the definitions of `tables` (and their databases) from the upstream, for a changefeed that starts at
 * `ts`, the upstream's end of binlog a moment ago. The definitions are read after `ts`; they are the ones at `ts`
 * only if no DDL touched those databases in between, which the binlog between `ts` and the end after the reads
 * says (`endOfBinlog` gives that end): if one did, the snapshot is refused (retryable: creating the changefeed
 * again takes a new `ts`).
 */
export async function readSchemaSnapshot(upstream: Upstream, reader: ResumableReaderOptions, ts: Ts, tables: readonly QualifiedName[], endOfBinlog: () => Promise<Ts>): Promise<SchemaSnapshot> {
  const databases: { schema: string; query: string }[] = [];
  const definitions: (QualifiedName & { query: string })[] = [];
  await upstream.with('read the table definitions for the schema snapshot', async (conn) => {
    for (const schema of [...new Set(tables.map((t) => t.schema))].sort()) {
      const [rows] = await conn.query<mysql.RowDataPacket[]>(`SHOW CREATE DATABASE ${quote(schema)}`);
      const text = String(rows[0]?.['Create Database'] ?? '');
      databases.push({ schema, query: text.replace(/^CREATE DATABASE (?!IF NOT EXISTS)/i, 'CREATE DATABASE IF NOT EXISTS ') });
    }
    for (const t of tables) {
      const [rows] = await conn.query<mysql.RowDataPacket[]>(`SHOW CREATE TABLE ${quote(t.schema)}.${quote(t.table)}`);
      // AUTO_INCREMENT=n is the upstream's counter now, not part of the definition
      definitions.push({ schema: t.schema, table: t.table, query: String(rows[0]?.['Create Table'] ?? '').replace(/ AUTO_INCREMENT=\d+/, '') });
    }
  });
  const end = await endOfBinlog();
  const schemas = new Set(databases.map((d) => d.schema));
  const touched = (await readDDLBetween(reader, ts, end)).filter((ddl) => {
    const c = classifyDDL(ddl.query, ddl.schema);
    return c.tables.some((t) => schemas.has(t.schema)) || c.renamedTo.some((t) => schemas.has(t.schema)) || (c.database !== undefined && schemas.has(c.database));
  });
  if (touched.length > 0) {
    throw new TidemarkError('ErrSchemaMismatch', `DDL ran on the upstream while the schema snapshot was read (${touched.map((d) => d.query).join('; ').slice(0, 300)}): create the changefeed again`, { retryable: true });
  }
  return { ts, databases, tables: definitions };
}

/** Writes a schema snapshot to the sink as DDL at its ts: the databases, then the tables. */
export async function writeSchemaSnapshot(sink: Sink, snapshot: SchemaSnapshot, logger: Logger): Promise<void> {
  const commitTime = Date.now();
  for (const d of snapshot.databases) {
    const event: DDLEvent = { commitTs: snapshot.ts, commitTime, schema: d.schema, query: d.query, kind: 'create-database', tables: [] };
    await sink.writeDDL(event);
  }
  for (const t of snapshot.tables) {
    const event: DDLEvent = { commitTs: snapshot.ts, commitTime, schema: t.schema, query: t.query, kind: 'create-table', tables: [{ schema: t.schema, table: t.table, tableId: 0 }] };
    await sink.writeDDL(event);
    logger.info('schema snapshot: table created in the sink (an existing one is left as it is)', { table: `${t.schema}.${t.table}` });
  }
}
