import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import type { ColumnValue, SinkFactory } from '../../../src/core/sink/api.js';
import { canonical, describeSinkConformance, pkKey, type TableState } from '../../../src/core/sink/testkit.js';

/**
 * The sink conformance suite against the third-party fixture plugin (test/fixtures/plugins/sink-file, plain
 * JavaScript outside plugins/, loaded as `cdc plugins link` would load it): what a plugin author runs. readBack
 * replays the table's JSON-lines file (one line per row change, DDL lines between them) into the table's state.
 */
const { factory } = (await import(new URL('../../fixtures/plugins/sink-file/index.js', import.meta.url).href)) as { factory: SinkFactory<{ dir: string }> };
const root = mkdtempSync(join(tmpdir(), 'tidemark-file-conformance-'));
let next = 0;
after(() => rmSync(root, { recursive: true, force: true }));

/** A value as the file sink wrote it: bigints as text, bytes as {base64}. */
function valueOf(v: unknown): ColumnValue {
  if (v !== null && typeof v === 'object' && 'base64' in v) return Buffer.from(String((v as { base64: string }).base64), 'base64');
  return v as ColumnValue;
}

describeSinkConformance('file (third-party fixture plugin)', {
  factory,
  uri: () => new URL(`file://${join(root, `out-${next++}`)}`),
  readBack: (table, uri) => {
    const file = join(decodeURIComponent(uri.pathname), `${table.name.schema}.${table.name.table}.jsonl`);
    const state: TableState = new Map();
    if (!existsSync(file)) return Promise.resolve(state);
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      if (line === '') continue;
      const change = JSON.parse(line) as { ddl?: string; columns?: string[]; before?: unknown[] | null; after?: unknown[] | null };
      if (change.ddl !== undefined || change.columns === undefined) continue;
      const names = change.columns;
      const image = (values: unknown[]): ColumnValue[] => table.columns.map((c) => (names.includes(c.name) ? valueOf(values[names.indexOf(c.name)]) : null));
      if (change.before !== null && change.before !== undefined) state.delete(pkKey(table.columns, image(change.before)));
      if (change.after !== null && change.after !== undefined) {
        const values = image(change.after);
        state.set(pkKey(table.columns, values), values.map(canonical));
      }
    }
    return Promise.resolve(state);
  },
});
