import type { ColumnInfo } from '../../src/core/sink/api.js';
import type { Value } from '../../src/core/upstream/rows.js';

/**
 * The type matrix: column families covering every MySQL/MariaDB type the puller decodes, each with rows as
 * SQL literals and the golden decoded values (the id column not included). Used by the puller's type test,
 * the file-sink replay and the sink plugins' round trips.
 */
export interface TypeFamily {
  readonly name: string;
  readonly columns: string;
  /**
   * Rows as SQL literals, each with the golden values decoded from the binlog alone (the id column not included)
   * and, where a changefeed delivers other values, those (`mounted`): MariaDB's UUID, INET6 and INET4 as their
   * text, which the binlog has as bytes (the mounter renders them, knowing the table's definition).
   */
  readonly rows: readonly (readonly [sql: string, golden: readonly Value[], mounted?: readonly Value[]])[];
}

/** SRID 0 (4 bytes LE), then WKB: little-endian, type 1 (POINT), x = 1.0, y = 2.0 */
const GEOMETRY_POINT_1_2 = Buffer.from('00000000' + '01' + '01000000' + '000000000000f03f' + '0000000000000040', 'hex');

/** A row's values as a changefeed delivers them to a sink (see TypeFamily.rows). */
export function mountedValues(row: TypeFamily['rows'][number]): readonly Value[] {
  return row[2] ?? row[1];
}

export const typeFamilies: TypeFamily[] = [
  {
    name: 'temporal: every fsp, negative and > 24 h TIME, zero dates',
    columns: 't0 TIME(0), t1 TIME(1), t2 TIME(2), t3 TIME(3), t4 TIME(4), t5 TIME(5), t6 TIME(6), dt0 DATETIME, dt2 DATETIME(2), dt4 DATETIME(4), dt6 DATETIME(6), ts0 TIMESTAMP NULL, ts3 TIMESTAMP(3) NULL, ts5 TIMESTAMP(5) NULL, d DATE, y YEAR',
    rows: [
      [
        `'-00:00:01', '-00:00:00.1', '-00:00:00.01', '-838:59:58.999', '-12:34:56.7891', '100:00:00.00001', '-00:00:00.000001', '0000-00-00 00:00:00', '0000-00-00 00:00:00.00', '2000-01-01 00:00:00.0001', '1000-01-01 00:00:00.000000', '0000-00-00 00:00:00', '1970-01-01 00:00:01.001', '2001-09-09 01:46:40.12345', '0000-00-00', 0`,
        ['-00:00:01', '-00:00:00.1', '-00:00:00.01', '-838:59:58.999', '-12:34:56.7891', '100:00:00.00001', '-00:00:00.000001', '0000-00-00 00:00:00', '0000-00-00 00:00:00.00', '2000-01-01 00:00:00.0001', '1000-01-01 00:00:00.000000', '0000-00-00 00:00:00', '1970-01-01 00:00:01.001', '2001-09-09 01:46:40.12345', '0000-00-00', 0],
      ],
      [
        `'838:59:59', '23:59:59.9', '24:00:00.99', '00:00:00.000', '-00:00:00.0001', '-00:00:00.99999', '838:59:58.999999', '9999-12-31 23:59:59', '2024-02-29 23:59:59.99', '1999-12-31 23:59:59.9999', '2038-01-19 03:14:08.000001', '2038-01-19 03:14:07', '2038-01-19 03:14:07.999', '1970-01-01 00:00:01.00001', '9999-12-31', 1901`,
        ['838:59:59', '23:59:59.9', '24:00:00.99', '00:00:00.000', '-00:00:00.0001', '-00:00:00.99999', '838:59:58.999999', '9999-12-31 23:59:59', '2024-02-29 23:59:59.99', '1999-12-31 23:59:59.9999', '2038-01-19 03:14:08.000001', '2038-01-19 03:14:07', '2038-01-19 03:14:07.999', '1970-01-01 00:00:01.00001', '9999-12-31', 1901],
      ],
    ],
  },
  {
    name: 'numeric: integer bounds, decimals of every shape, floats, bits',
    columns: 'ti TINYINT UNSIGNED, si SMALLINT UNSIGNED, mi MEDIUMINT, i INT UNSIGNED, bi BIGINT UNSIGNED, d0 DECIMAL(18,0), d9 DECIMAL(9,9), d30 DECIMAL(65,30), d4 DECIMAL(5,4), f FLOAT, db DOUBLE, b7 BIT(7), b9 BIT(9)',
    rows: [
      [
        `0, 0, -8388608, 0, 0, -999999999999999999, -0.000000001, '0.000000000000000000000000000001', 0, 0, 0, b'0', b'0'`,
        [0, 0, -8388608, 0, 0n, '-999999999999999999', '-0.000000001', '0.000000000000000000000000000001', '0.0000', 0, 0, 0n, 0n],
      ],
      [
        `255, 65535, 8388607, 4294967295, 9007199254740993, 123456789012345678, 0.999999999, '99999999999999999999999999999999999.999999999999999999999999999999', -9.9999, -3.4028234663852886e38, 1.7976931348623157e308, b'1111111', b'100000001'`,
        [255, 65535, 8388607, 4294967295, 9007199254740993n, '123456789012345678', '0.999999999', '99999999999999999999999999999999999.999999999999999999999999999999', '-9.9999', -3.4028234663852886e38, 1.7976931348623157e308, 127n, 257n],
      ],
    ],
  },
  {
    name: 'strings: utf8mb4, latin1 and binary collations, empty vs NULL, ENUM, SET',
    columns: 'c4 CHAR(4) CHARACTER SET utf8mb4, vu VARCHAR(10) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin, vl VARCHAR(300) CHARACTER SET latin1, bn BINARY(4), vbn VARBINARY(300), tt TINYTEXT CHARACTER SET utf8mb4, mt MEDIUMTEXT CHARACTER SET latin1, lb LONGBLOB, e ENUM(\'\', \'x\', \'y😀\'), s SET(\'a\',\'b\',\'c\',\'d\',\'e\',\'f\',\'g\',\'h\',\'i\')',
    rows: [
      [
        `'😀😀', '', 'ÿé', 0x61, '', '', '', '', 'y😀', 'a,i'`,
        ['😀😀', '', 'ÿé', Buffer.from([0x61, 0, 0, 0]), Buffer.alloc(0), '', '', Buffer.alloc(0), 'y😀', 'a,i'],
      ],
      [
        `'', 'ab ', '${'x'.repeat(300)}', 0x00000000, 0x00, '𝄞', 'é', 0x00ff, '', ''`,
        ['', 'ab ', 'x'.repeat(300), Buffer.alloc(4), Buffer.from([0]), '𝄞', 'é', Buffer.from([0x00, 0xff]), '', ''],
      ],
    ],
  },
  {
    name: 'MariaDB JSON (LONGTEXT), UUID, INET6, INET4, GEOMETRY',
    columns: 'j JSON, u UUID, ip INET6, ip4 INET4, g GEOMETRY',
    rows: [
      [
        `'{"a": [1, 2.5, "😀", null, true]}', '123e4567-e89b-12d3-a456-426655440000', '2001:db8::1', '10.0.0.1', ST_GeomFromText('POINT(1 2)')`,
        [
          '{"a": [1, 2.5, "😀", null, true]}',
          Buffer.from('123e4567e89b12d3a456426655440000', 'hex'),
          Buffer.from('20010db8000000000000000000000001', 'hex'),
          Buffer.from('0a000001', 'hex'),
          GEOMETRY_POINT_1_2,
        ],
        ['{"a": [1, 2.5, "😀", null, true]}', '123e4567-e89b-12d3-a456-426655440000', '2001:db8::1', '10.0.0.1', GEOMETRY_POINT_1_2],
      ],
      [
        // trailing zero bytes (the binlog drops them from BINARY(n) values), an IPv4-mapped address, 0.0.0.0
        `'{"b": null}', '123e4567-e89b-12d3-a456-426614174000', '::ffff:10.0.0.1', '0.0.0.0', ST_GeomFromText('POINT(3 4)')`,
        [
          '{"b": null}',
          Buffer.from('123e4567e89b12d3a456426614174000', 'hex'),
          Buffer.from('00000000000000000000ffff0a000001', 'hex'),
          Buffer.alloc(4),
          Buffer.from('00000000' + '01' + '01000000' + '0000000000000840' + '0000000000001040', 'hex'),
        ],
        ['{"b": null}', '123e4567-e89b-12d3-a456-426614174000', '::ffff:10.0.0.1', '0.0.0.0', Buffer.from('00000000' + '01' + '01000000' + '0000000000000840' + '0000000000001040', 'hex')],
      ],
      [
        `'{}', '00000000-0000-0000-0000-000000000000', '2001:db8::ff00:42:8329', '255.255.255.255', ST_GeomFromText('POINT(0 0)')`,
        [
          '{}',
          Buffer.alloc(16),
          Buffer.from('20010db8000000000000ff0000428329', 'hex'),
          Buffer.from('ffffffff', 'hex'),
          Buffer.from('00000000' + '01' + '01000000' + '0000000000000000' + '0000000000000000', 'hex'),
        ],
        ['{}', '00000000-0000-0000-0000-000000000000', '2001:db8::ff00:42:8329', '255.255.255.255', Buffer.from('00000000' + '01' + '01000000' + '0000000000000000' + '0000000000000000', 'hex')],
      ],
    ],
  },
];

/** Splits a type family's column list ("a INT, e ENUM('x', 'y'), …") into ColumnInfo. */
export function typeFamilyColumns(sql: string): ColumnInfo[] {
  const parts: string[] = [];
  let depth = 0;
  let quoted = false;
  let current = '';
  for (const c of sql) {
    if (c === "'") quoted = !quoted;
    if (!quoted && c === '(') depth++;
    if (!quoted && c === ')') depth--;
    if (!quoted && depth === 0 && c === ',') {
      parts.push(current.trim());
      current = '';
    } else current += c;
  }
  parts.push(current.trim());
  const out: ColumnInfo[] = [{ name: 'id', mysqlType: 'int', primaryKey: true, nullable: false }];
  for (const p of parts) {
    const space = p.indexOf(' ');
    const type = p
      .slice(space + 1)
      .replace(/\s+(NULL|CHARACTER SET \w+|COLLATE \w+)/gi, '')
      .trim();
    out.push({ name: p.slice(0, space), mysqlType: type.toLowerCase(), primaryKey: false, nullable: true });
  }
  return out;
}
