import mysql from 'mysql2/promise';
import { after, before } from 'node:test';
import { endOfBinlog } from '../../src/core/upstream/binlog-position.js';
import { mysqlUri, requireService, uniqueName } from './services.js';

/** The upstream's end of binlog as a Tidemark ts (DESIGN §2): (file sequence << 32) | position. */
export async function upstreamEndTs(conn: Pick<mysql.Connection, 'query'> | Pick<mysql.Pool, 'query'>): Promise<bigint> {
  return (await endOfBinlog(conn)).ts;
}

/**
 * A database of its own on the upstream for the tests of the enclosing `describe`, created before them and dropped
 * after them, with a connection (`conn`, set once the tests run).
 */
export function upstreamScratchDatabase(prefix: string): { readonly db: string; readonly conn: mysql.Connection } {
  const db = uniqueName(prefix);
  let conn: mysql.Connection | undefined;
  before(async () => {
    await requireService('upstream');
    conn = await mysql.createConnection({ uri: mysqlUri('upstream') });
    await conn.query(`CREATE DATABASE \`${db}\``);
  });
  after(async () => {
    await conn?.query(`DROP DATABASE IF EXISTS \`${db}\``);
    await conn?.end();
  });
  return {
    db,
    get conn(): mysql.Connection {
      if (conn === undefined) throw new Error(`the upstream database ${db} is set up before the tests run`);
      return conn;
    },
  };
}
