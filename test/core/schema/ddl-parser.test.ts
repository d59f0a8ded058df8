import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyAlter, databaseCharset, parseCreateTable, tokenize, UntrackableDDL } from '../../../src/core/schema/ddl-parser.js';
import type { TableSchema } from '../../../src/core/schema/table-schema.js';

const cols = (t: TableSchema): string[] => t.columns.map((c) => `${c.name}:${c.columnType}:${c.nullable ? 'null' : 'not null'}:${c.charset ?? '-'}${c.values ? `:[${c.values.join('|')}]` : ''}`);

describe('DDL parser (schema storage)', () => {
  it('tokenizes quoted names, strings with both escapes, comments and executable comments', () => {
    const t = tokenize("CREATE /* x */ TABLE `a``b` (c ENUM('it''s','x\\'y') /*!50100 COMMENT 'z' */) -- tail\n# more");
    assert.deepEqual(t.map((x) => x.text), ['CREATE', 'TABLE', 'a`b', '(', 'c', 'ENUM', '(', "it's", ',', "x'y", ')', 'COMMENT', 'z', ')']);
  });

  it('CREATE TABLE: types, aliases, unsigned, charsets, ENUM/SET members, inline and table primary keys', () => {
    const t = parseCreateTable(
      `CREATE TABLE IF NOT EXISTS shop.\`orders\` (
        id BIGINT(20) UNSIGNED NOT NULL AUTO_INCREMENT,
        n INTEGER ZEROFILL DEFAULT '0' COMMENT 'a, b',
        flag BOOLEAN DEFAULT FALSE,
        price DECIMAL(65,30) DEFAULT -1.5,
        name VARCHAR(20) CHARACTER SET latin1 COLLATE latin1_swedish_ci NOT NULL DEFAULT '',
        code CHAR(4) COLLATE utf8mb4_bin,
        raw VARBINARY(16),
        body LONGTEXT,
        kind ENUM('a','b,c','it''s') NOT NULL,
        tags SET('x','y'),
        u UUID, ip INET6, g POINT, j JSON,
        at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
        total DOUBLE PRECISION AS (price * 2) VIRTUAL,
        PRIMARY KEY (id, kind), KEY k_name (name(10)), CONSTRAINT fk FOREIGN KEY (n) REFERENCES other (id) ON DELETE CASCADE,
        CHECK (n > 0)
      ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb3 COLLATE=utf8mb3_general_ci`,
      'app',
      'utf8mb4',
    );
    assert.equal(t.schema, 'shop');
    assert.equal(t.table, 'orders');
    assert.equal(t.charset, 'utf8mb3');
    assert.deepEqual(t.primaryKey, ['id', 'kind']);
    assert.deepEqual(cols(t), [
      'id:bigint(20) unsigned:not null:-',
      'n:int unsigned:null:-',
      'flag:tinyint(1):null:-',
      'price:decimal(65,30):null:-',
      'name:varchar(20):not null:latin1',
      'code:char(4):null:utf8mb4',
      'raw:varbinary(16):null:binary',
      'body:longtext:null:utf8mb3',
      "kind:enum('a','b,c','it''s'):not null:utf8mb3:[a|b,c|it's]",
      "tags:set('x','y'):null:utf8mb3:[x|y]",
      'u:uuid:null:binary',
      'ip:inet6:null:binary',
      'g:point:null:-',
      'j:json:null:utf8mb4',
      'at:datetime(6):not null:-',
      'total:double:null:-',
    ]);
  });

  it('CREATE TABLE without a column list cannot be followed', () => {
    assert.throws(() => parseCreateTable('CREATE TABLE t2 LIKE t1', 'app', 'utf8mb4'), UntrackableDDL);
    assert.throws(() => parseCreateTable('CREATE TABLE t2 AS SELECT * FROM t1', 'app', 'utf8mb4'), UntrackableDDL);
    assert.throws(() => parseCreateTable('CREATE TABLE t2 (a int) SELECT 1 AS a', 'app', 'utf8mb4'), UntrackableDDL);
  });

  const base = parseCreateTable("CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(10), b INT UNSIGNED, c ENUM('x','y'))", 'app', 'latin1');

  it('ALTER TABLE: ADD (FIRST, AFTER, several), DROP, MODIFY, CHANGE, RENAME COLUMN, keys, neutral clauses', () => {
    let t = applyAlter('ALTER TABLE t ADD COLUMN d DATETIME(3) NOT NULL AFTER a, ADD e TEXT CHARACTER SET utf8mb4 FIRST, ALGORITHM=INSTANT, LOCK=NONE', 'app', base).table;
    assert.deepEqual(t.columns.map((c) => c.name), ['e', 'id', 'a', 'd', 'b', 'c']);
    t = applyAlter('ALTER TABLE `app`.`t` DROP COLUMN e, DROP b, ADD INDEX (a), ADD UNIQUE KEY u (d), COMMENT = \'x\'', 'app', t).table;
    assert.deepEqual(cols(t), ['id:int:not null:-', 'a:varchar(10):null:latin1', 'd:datetime(3):not null:-', "c:enum('x','y'):null:latin1:[x|y]"]);
    t = applyAlter("ALTER TABLE t MODIFY c ENUM('x','y','z') NOT NULL, CHANGE COLUMN a a2 VARCHAR(20) CHARSET utf8mb4 AFTER c", 'app', t).table;
    assert.deepEqual(cols(t), ['id:int:not null:-', 'd:datetime(3):not null:-', "c:enum('x','y','z'):not null:latin1:[x|y|z]", 'a2:varchar(20):null:utf8mb4']);
    t = applyAlter('ALTER TABLE t RENAME COLUMN id TO pk, ADD COLUMN (f BIGINT UNSIGNED, g BIT(3)), ALTER COLUMN d SET DEFAULT NOW()', 'app', t).table;
    assert.deepEqual(t.primaryKey, ['pk']);
    assert.deepEqual(t.columns.map((c) => `${c.name}${c.unsigned ? '+' : ''}`), ['pk', 'd', 'c', 'a2', 'f+', 'g']);
    t = applyAlter('ALTER TABLE t DROP PRIMARY KEY, ADD PRIMARY KEY (pk, d)', 'app', t).table;
    assert.deepEqual(t.primaryKey, ['pk', 'd']);
    t = applyAlter('ALTER TABLE t CONVERT TO CHARACTER SET utf8mb4', 'app', t).table;
    assert.deepEqual(t.columns.map((c) => c.charset), [null, null, 'utf8mb4', 'utf8mb4', null, null]);
    const renamed = applyAlter('ALTER TABLE t RENAME TO other.t9', 'app', t);
    assert.deepEqual(renamed.renamedTo, { schema: 'other', table: 't9' });
  });

  it('ADD COLUMN IF NOT EXISTS / DROP COLUMN IF EXISTS are no-ops when they do not apply; unknown clauses are untrackable', () => {
    assert.deepEqual(applyAlter('ALTER TABLE t ADD COLUMN IF NOT EXISTS a INT, DROP COLUMN IF EXISTS zz', 'app', base).table.columns, base.columns);
    assert.throws(() => applyAlter('ALTER TABLE t ADD COLUMN a INT', 'app', base), UntrackableDDL);
    assert.throws(() => applyAlter('ALTER TABLE t DROP COLUMN zz', 'app', base), UntrackableDDL);
    assert.throws(() => applyAlter('ALTER TABLE t FROBNICATE a', 'app', base), UntrackableDDL);
    assert.throws(() => applyAlter('ALTER TABLE t ADD COLUMN q INT AFTER nope', 'app', base), UntrackableDDL);
  });

  it('database character sets', () => {
    assert.equal(databaseCharset('CREATE DATABASE IF NOT EXISTS d CHARACTER SET latin1'), 'latin1');
    assert.equal(databaseCharset('CREATE SCHEMA d DEFAULT COLLATE utf8mb3_bin'), 'utf8mb3');
    assert.equal(databaseCharset('ALTER DATABASE d CHARSET = ascii'), 'ascii');
    assert.equal(databaseCharset('CREATE DATABASE d'), undefined);
  });
});
