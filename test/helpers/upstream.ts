import type mysql from 'mysql2/promise';

/** The upstream's end of binlog as a Tidemark ts (DESIGN §2): (file sequence << 32) | position. */
export async function upstreamEndTs(conn: Pick<mysql.Connection, 'query'> | Pick<mysql.Pool, 'query'>): Promise<bigint> {
  const [rows] = await (conn as mysql.Connection).query<mysql.RowDataPacket[]>('SHOW MASTER STATUS');
  const { File: file, Position: pos } = rows[0] as { File: string; Position: number };
  return (BigInt(/\.(\d+)$/.exec(file)![1]) << 32n) | BigInt(pos);
}
