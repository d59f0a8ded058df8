import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { encodeRows, fieldOf, loadPlanOf, loadStatement, textStream } from '../../../plugins/sink-mysql/src/load-data.js';
import type { ColumnInfo } from '../../../src/core/sink/api.js';

const col = (name: string, mysqlType: string): ColumnInfo => ({ name, mysqlType, primaryKey: name === 'id', nullable: name !== 'id' });

describe('mysql sink: snapshot rows as LOAD DATA text', () => {
  it('loads text types as text and binary strings as hex through a user variable', () => {
    const columns = [col('id', 'int'), col('b', 'varbinary(16)'), col('e', "enum('x','y')"), col('blob', 'longblob'), col('d', 'decimal(12,2) unsigned')];
    const plan = loadPlanOf(columns);
    assert.ok(plan !== null);
    assert.deepEqual(plan.kinds, ['text', 'hex', 'text', 'hex', 'text']);
    assert.equal(plan.tail, '(`id`, @v1, `e`, @v3, `d`) SET `b` = UNHEX(@v1), `blob` = UNHEX(@v3)');
    assert.equal(
      loadStatement('`db`.`t`', plan),
      "LOAD DATA LOCAL INFILE 'tidemark-snapshot' INTO TABLE `db`.`t` CHARACTER SET utf8mb4 FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (`id`, @v1, `e`, @v3, `d`) SET `b` = UNHEX(@v1), `blob` = UNHEX(@v3)",
    );
    assert.equal(loadPlanOf(columns), plan, 'one plan per column list');
  });

  it('leaves tables with BIT, spatial or MariaDB UUID/INET columns to INSERT', () => {
    for (const type of ['bit(8)', 'point', 'geometry', 'uuid', 'inet6', 'inet4', 'type245']) {
      assert.equal(loadPlanOf([col('id', 'int'), col('x', type)]), null, type);
    }
  });

  it('writes NULL as \\N, escapes the separators and the escape character, and keeps every other character', () => {
    assert.equal(fieldOf(null, 'text'), '\\N');
    assert.equal(fieldOf(null, 'hex'), '\\N');
    assert.equal(fieldOf('a\tb\nc\\d\re\0f', 'text'), 'a\\tb\\nc\\\\d\\re\\0f');
    assert.equal(fieldOf('\\N', 'text'), '\\\\N', 'the text \\N is not NULL');
    assert.equal(fieldOf('', 'text'), '');
    assert.equal(fieldOf('héllo 😀', 'text'), 'héllo 😀');
    assert.equal(fieldOf(-12345678901234567890n, 'text'), '-12345678901234567890');
    assert.equal(fieldOf(0.1, 'text'), '0.1');
    assert.equal(fieldOf(Number.NaN, 'text'), '\\N');
    assert.equal(fieldOf(true, 'text'), '1');
    assert.equal(fieldOf(Buffer.from([0, 9, 10, 255]), 'hex'), '00090aff');
    assert.equal(fieldOf(Buffer.from('x'), 'text'), undefined, 'bytes in a text column have no exact text form');
    assert.equal(fieldOf(0, 'year'), '0000', "YEAR 0 as '0000': the text '0' is the year 2000");
    assert.equal(fieldOf(1901, 'year'), '1901');
  });

  it('encodes rows as lines of tab-separated fields, growing its buffer for long values', () => {
    const plan = loadPlanOf([col('id', 'int'), col('s', 'text'), col('b', 'blob')])!;
    const long = 'x'.repeat(100_000);
    const text = encodeRows(
      [
        [1, 'a\tb', Buffer.from([1, 2])],
        [2, null, null],
        [3, long, Buffer.alloc(0)],
        [4, 'ab😀é\t', null],
      ],
      plan,
    );
    assert.equal(text?.toString('utf8'), `1\ta\\tb\t0102\n2\t\\N\t\\N\n3\t${long}\t\n4\tab😀é\\t\t\\N\n`);
    assert.equal(encodeRows([[1, Buffer.from('x'), null]], plan), undefined);
  });

  it('streams the text in chunks of at most 1 MiB, byte for byte', async () => {
    const text = Buffer.alloc(2.5 * 1048576, 7);
    const chunks: Buffer[] = [];
    for await (const chunk of textStream(text)) chunks.push(chunk as Buffer);
    assert.deepEqual(chunks.map((c) => c.length), [1048576, 1048576, 524288]);
    assert.ok(Buffer.concat(chunks).equals(text));
  });
});
