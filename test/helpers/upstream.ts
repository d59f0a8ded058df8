import type mysql from 'mysql2/promise';
import { endOfBinlog } from '../../src/core/upstream/binlog-position.js';

/** The upstream's end of binlog as a Tidemark ts (DESIGN §2): (file sequence << 32) | position. */
export async function upstreamEndTs(conn: Pick<mysql.Connection, 'query'> | Pick<mysql.Pool, 'query'>): Promise<bigint> {
  return (await endOfBinlog(conn)).ts;
}
