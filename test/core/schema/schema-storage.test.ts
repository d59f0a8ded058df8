import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCreateTable } from '../../../src/core/schema/ddl-parser.js';
import { SchemaStorage } from '../../../src/core/schema/schema-storage.js';
import type { TableSchema } from '../../../src/core/schema/table-schema.js';

const names = (t: TableSchema | { stale: string } | undefined): string => (t === undefined ? 'none' : 'stale' in t ? 'stale' : t.columns.map((c) => c.name).join(','));

/** The changefeed schema storage's life in etcd: saved (JSON) after each DDL, compacted at the checkpoint. */
describe('schema storage: persistence and compaction', () => {
  const base = (): SchemaStorage => SchemaStorage.fromTables(100n, [parseCreateTable('CREATE TABLE t (id INT PRIMARY KEY, a INT)', 'app', 'utf8mb4')], [['app', 'utf8mb4']]);

  it('a storage read back from JSON answers by ts as before and does not apply a DDL it already has', () => {
    const s = base();
    assert.equal(s.applyDDL(200n, 'app', 'ALTER TABLE t ADD COLUMN b INT'), true);
    assert.equal(s.applyDDL(300n, 'app', 'ALTER TABLE t DROP COLUMN a'), true);
    const back = SchemaStorage.fromJSON(JSON.parse(JSON.stringify(s.toJSON())));
    assert.equal(back.lastDDL, 300n);
    assert.equal(names(back.tableAt('app', 't', 150n)), 'id,a');
    assert.equal(names(back.tableAt('app', 't', 250n)), 'id,a,b');
    assert.equal(names(back.tableAt('app', 't', 350n)), 'id,b');
    // a reader that starts behind the last DDL reads it again: ignored (applying it twice would drop b's neighbour)
    assert.equal(back.applyDDL(200n, 'app', 'ALTER TABLE t ADD COLUMN b INT'), false);
    assert.equal(back.applyDDL(300n, 'app', 'ALTER TABLE t DROP COLUMN a'), false);
    assert.equal(names(back.tableAt('app', 't', 350n)), 'id,b');
    assert.equal(back.applyDDL(400n, 'app', 'ALTER TABLE t ADD COLUMN c INT'), true);
    assert.equal(names(back.tableAt('app', 't', 450n)), 'id,b,c');
  });

  it('compaction keeps what a reader at the checkpoint or later can ask for, and forgets dropped tables', () => {
    const s = base();
    s.applyDDL(200n, 'app', 'ALTER TABLE t ADD COLUMN b INT');
    s.applyDDL(300n, 'app', 'CREATE TABLE gone (id INT PRIMARY KEY)');
    s.applyDDL(400n, 'app', 'DROP TABLE gone');
    s.applyDDL(500n, 'app', 'ALTER TABLE t ADD COLUMN c INT');
    s.compact(450n);
    assert.equal(s.coveredFrom, 450n);
    assert.equal(names(s.tableAt('app', 't', 460n)), 'id,a,b');
    assert.equal(names(s.tableAt('app', 't', 510n)), 'id,a,b,c');
    assert.equal(s.tableAt('app', 'gone', 460n), undefined);
    assert.deepEqual(Object.keys(s.toJSON().tables), ['app.t']);
    assert.equal(s.toJSON().tables['app.t']?.length, 2);
    assert.throws(() => s.tableAt('app', 't', 300n), { code: 'ErrSchemaUnknown' });
    s.compact(100n); // never back
    assert.equal(s.coveredFrom, 450n);
  });

  it('the tables at a ts: before a RENAME the old name, after it the new one; a dropped table is gone', () => {
    const s = base();
    s.applyDDL(200n, 'app', 'RENAME TABLE t TO t2');
    s.applyDDL(300n, 'app', 'CREATE TABLE x (id INT)');
    s.applyDDL(400n, 'app', 'DROP TABLE x');
    const at = (ts: bigint): string[] => s.tablesAt(ts).map((t) => `${t.schema}.${t.table}`).sort();
    assert.deepEqual(at(150n), ['app.t']);
    assert.deepEqual(at(200n), ['app.t2']);
    assert.deepEqual(at(350n), ['app.t2', 'app.x']);
    assert.deepEqual(at(400n), ['app.t2']);
  });

  it('a table filter leaves the TABLE_MAPs of other tables as the binlog gave them', async () => {
    const s = base();
    s.tableFilter = (schema) => schema === 'app';
    const map = { tableId: 7n, schema: 'mysql', table: 'gtid_slave_pos', columnCount: 1, types: [3], meta: [0], nullable: [false], unsigned: [], primaryKey: [], enumValues: new Map(), setValues: new Map(), charsets: new Map() };
    assert.equal(await s.complete(map as never, 500n), map);
  });
});
