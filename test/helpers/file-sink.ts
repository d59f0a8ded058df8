import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** One line of the example file sink (test/fixtures/plugins/sink-file): a row change or a DDL. */
export interface FileSinkLine {
  ts: string;
  kind?: 'insert' | 'update' | 'delete';
  columns?: string[];
  before?: unknown[] | null;
  after?: unknown[] | null;
  ddl?: string;
  query?: string;
}

/** The lines the file sink wrote for `schema.table` under `dir` (none yet: empty). */
export function readFileSinkLines(dir: string, schema: string, table: string): FileSinkLine[] {
  const file = join(dir, `${schema}.${table}.jsonl`);
  return existsSync(file) ? readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as FileSinkLine) : [];
}

/** Only the row changes. */
export function readFileSinkRows(dir: string, schema: string, table: string): FileSinkLine[] {
  return readFileSinkLines(dir, schema, table).filter((l) => l.kind !== undefined);
}
