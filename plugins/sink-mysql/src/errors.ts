import type { DDLEvent } from 'tidemark/sink';

/** The mysql sink's errors: the downstream's error numbers it acts on, and its own typed errors. */
export const ER_LOCK_DEADLOCK = 1213;
export const ER_LOCK_WAIT_TIMEOUT = 1205;
/** ER_MAX_PREPARED_STMT_COUNT_REACHED: the server is out of prepared statements; the text form still works. */
export const ER_MAX_PREPARED_STMT_COUNT = 1461;
/** ER_NOT_ALLOWED_COMMAND: MariaDB (and MySQL before 8.0.19) with local_infile off refuses LOAD DATA LOCAL INFILE. */
export const ER_LOCAL_INFILE_REFUSED = 1148;
/** MySQL 8's ER_CLIENT_LOCAL_FILES_DISABLED and MariaDB 10.6+'s ER_LOAD_INFILE_CAPABILITY_DISABLED: local_infile off. */
export const ER_LOCAL_INFILE_DISABLED: ReadonlySet<number> = new Set([3948, 4166]);
/**
 * Errors that say a DDL's effect is already there (TiCDC's ignorable DDL errors): database/table exists or is
 * gone, duplicate column or key name, key or column to drop missing, multiple primary keys, partition exists or
 * is gone. A new owner replays the DDL the old one may have executed just before it died (the checkpoint had
 * not passed it yet), so they are tolerated for the DDLs a sink runs before its first clean execution.
 */
export const DDL_REPLAY_ERRORS: ReadonlySet<number> = new Set([1007, 1008, 1050, 1051, 1060, 1061, 1068, 1091, 1176, 1507, 1517]);

/** Tolerated at any time: a table or database the user created or dropped downstream ahead of the changefeed. */
export const DDL_ALREADY_DONE: Readonly<Partial<Record<DDLEvent['kind'], readonly number[]>>> = {
  'create-database': [1007],
  'create-table': [1050],
  'drop-database': [1008],
  'drop-table': [1051],
};
/** Downstream errors that do not heal by retrying: the downstream's schema does not fit the rows. */
export const SCHEMA_MISMATCH = new Set([1054, 1136, 1146, 1366, 1406]);

export type MySqlSinkErrorCode = 'ErrMySQLConnectionError' | 'ErrMySQLTLSError' | 'ErrMySQLTxnError' | 'ErrMySQLDDLError' | 'ErrMySQLTableNoKey' | 'ErrMySQLSinkClosed';

/**
 * The mysql sink's errors: `code` says what failed, `retryable` whether the changefeed should retry from its
 * checkpoint (the processor reads that field), `errno`/`sqlMessage` carry the downstream's own error.
 */
export class MySqlSinkError extends Error {
  override readonly name = 'MySqlSinkError';
  readonly errno: number | undefined;
  readonly sqlMessage: string | undefined;
  constructor(
    readonly code: MySqlSinkErrorCode,
    message: string,
    readonly retryable: boolean,
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    const c = cause as { errno?: number; sqlMessage?: string } | undefined;
    this.errno = c?.errno;
    this.sqlMessage = c?.sqlMessage;
  }
}

/** A mysql2 error as a MySqlSinkError: no errno (socket closed, refused, timed out) is a lost connection. */
export function downstreamError(code: 'ErrMySQLTxnError' | 'ErrMySQLDDLError', what: string, error: unknown): MySqlSinkError {
  const e = error as { errno?: number; code?: string; message?: string };
  const text = e.message ?? String(error);
  if (e.errno === undefined || e.code === 'PROTOCOL_CONNECTION_LOST' || e.code === 'ECONNREFUSED' || e.code === 'ECONNRESET' || e.code === 'ETIMEDOUT' || e.code === 'PROTOCOL_SEQUENCE_TIMEOUT') {
    return new MySqlSinkError('ErrMySQLConnectionError', `${what}: the connection to the downstream failed (${e.code ?? 'no code'}: ${text}); the changefeed retries from its checkpoint`, true, error);
  }
  return new MySqlSinkError(code, `${what}: ${text}`, !SCHEMA_MISMATCH.has(e.errno), error);
}

/** A downstream call passed read-timeout/write-timeout; its connection was destroyed. */
export class TimedOut extends Error {
  constructor(readonly sinkError: MySqlSinkError) {
    super(sinkError.message);
  }
}
