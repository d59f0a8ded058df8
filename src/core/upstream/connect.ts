import mysql from 'mysql2/promise';
import type { MySqlConnectionOptions } from '../config/uri.js';
import { acceptsOnlyTls, tlsRequiredError } from './protocol/connection.js';
import { loadTls, mysql2Ssl, tlsErrorOf } from './protocol/tls.js';

/** mysql2 options a caller may add (everything but where and who, which come from the URI). */
export type ExtraConnectionOptions = Omit<mysql.ConnectionOptions, 'uri' | 'host' | 'port' | 'user' | 'password' | 'ssl' | 'database'>;

/** Servers that offered no TLS to an ssl-mode=preferred connection, and when: connected in plaintext straight away for a while. */
const noTls = new Map<string, number>();
const NO_TLS_TTL_MS = 5 * 60_000;

/**
 * A mysql2 connection made with the parsed URI's options (ssl-mode with MySQL's meanings, ssl-ca/cert/key):
 * what every upstream connection other than the binlog dump uses (schema, preflight, snapshot, diff). A TLS
 * failure rejects with a typed, non-retryable TLS error naming what is wrong (ErrTLSCertificate,
 * ErrTLSUnavailable, ErrTLSRequired for a plaintext login a TLS-only server refused, ErrTLSHandshake); any
 * other failure is mysql2's error as before, for the caller to report.
 */
export async function connectMySql(target: MySqlConnectionOptions, extra: ExtraConnectionOptions = {}, what = 'upstream'): Promise<mysql.Connection> {
  const base: mysql.ConnectionOptions = {
    ...extra,
    host: target.host,
    port: target.port,
    user: target.user,
    password: target.password,
    ...(target.database === undefined ? {} : { database: target.database }),
  };
  const serverKey = `${target.host}:${target.port}`;
  const skipTls = target.tls.mode === 'preferred' && Date.now() - (noTls.get(serverKey) ?? 0) < NO_TLS_TTL_MS;
  const ssl = skipTls ? undefined : mysql2Ssl(loadTls(target.tls, what));
  try {
    return await mysql.createConnection(ssl === undefined ? base : { ...base, ssl });
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (target.tls.mode === 'preferred' && code === 'HANDSHAKE_NO_SSL_SUPPORT') {
      // preferred: plaintext when the server offers no TLS (MySQL's meaning)
      noTls.set(serverKey, Date.now());
      try {
        return await mysql.createConnection(base);
      } catch (plainError) {
        throw tlsErrorOf(plainError, { ...target, what }) ?? plainError;
      }
    }
    const typed = tlsErrorOf(error, { ...target, what });
    if (typed !== undefined) throw typed;
    if ((error as { errno?: number }).errno === 1045 && ssl === undefined && (await acceptsOnlyTls({ host: target.host, port: target.port, user: target.user, password: target.password }))) {
      if (skipTls) {
        // preferred, and the server that offered no TLS a while ago now offers it (and requires it): use it
        noTls.delete(serverKey);
        return await connectMySql(target, extra, what);
      }
      throw tlsRequiredError({ ...target, what }, error);
    }
    throw error;
  }
}
