import { readFileSync } from 'node:fs';

/** The mysql sink's configuration, from the sink URI (TiCDC's parameter names). */
export interface MySqlSinkConfig {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** Connections writing in parallel; tables are spread over them (one table's changes stay on one). */
  readonly workerCount: number;
  /** Rows per downstream transaction when consecutive upstream transactions of a table are merged. */
  readonly maxTxnRow: number;
  /** Multi-row INSERT and batched DELETE; off: one statement per row. */
  readonly batchDmlEnable: boolean;
  /** Always write idempotently (REPLACE, DELETE + REPLACE for updates). */
  readonly safeMode: boolean;
  /** How long after the sink starts it writes idempotently anyway (the replayed changes since the checkpoint); 0 = not at all. */
  readonly safeModeDurationMs: number;
  /** Session time zone the rows are written in; TIMESTAMP values come in UTC, so the default is +00:00. */
  readonly timeZone: string;
  /** ssl-mode (MySQL's names and meanings, see SSL_MODES) and the files of ssl-ca, ssl-cert, ssl-key (paths). */
  readonly ssl: SslConfig;
  readonly readTimeoutMs: number;
  readonly writeTimeoutMs: number;
  readonly multiStmtEnable: boolean;
  /** Replicate tables without a primary or NOT NULL unique key (rows are then matched on every column). */
  readonly forceReplicate: boolean;
  readonly tidb: boolean;
}

/**
 * MySQL's --ssl-mode values and meanings: disabled (plaintext); preferred (TLS when the server offers it, not
 * verified); required (TLS or fail, not verified); verify-ca (the certificate chains to ssl-ca); verify-identity
 * (verify-ca, and the certificate names the host). Without ssl-mode: verify-ca when ssl-ca is given (what the sink
 * always did with ssl-ca, as MySQL 5.7 implied), else preferred (MySQL's default).
 */
export const SSL_MODES = ['disabled', 'preferred', 'required', 'verify-ca', 'verify-identity'] as const;
export type SslMode = (typeof SSL_MODES)[number];

export interface SslConfig {
  readonly mode: SslMode;
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

export const PARAMS = [
  'worker-count',
  'max-txn-row',
  'batch-dml-enable',
  'safe-mode',
  'safe-mode-duration',
  'time-zone',
  'ssl-mode',
  'ssl-ca',
  'ssl-cert',
  'ssl-key',
  'read-timeout',
  'write-timeout',
  'multi-stmt-enable',
  'force-replicate',
] as const;

function fail(message: string): never {
  throw Object.assign(new Error(message), { retryable: false });
}

function int(uri: URL, key: string, fallback: number, min: number, max: number): number {
  const raw = uri.searchParams.get(key);
  if (raw === null) return fallback;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n) || n < min || n > max) fail(`invalid ${key} "${raw}" in mysql sink URI: an integer from ${min} to ${max}`);
  return n;
}

function bool(uri: URL, key: string, fallback: boolean): boolean {
  const raw = uri.searchParams.get(key);
  if (raw === null) return fallback;
  if (raw !== 'true' && raw !== 'false') fail(`invalid ${key} "${raw}" in mysql sink URI: true or false`);
  return raw === 'true';
}

/** Durations as TiCDC writes them: 500ms, 30s, 2m, 1h (or a bare number of seconds). */
function duration(uri: URL, key: string, fallbackMs: number): number {
  const raw = uri.searchParams.get(key);
  if (raw === null) return fallbackMs;
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(raw);
  if (m === null) fail(`invalid ${key} "${raw}" in mysql sink URI: a duration such as 500ms, 30s, 2m`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's'] ?? 1000;
  const ms = Number(m[1]) * unit;
  if (ms < 100 || ms > 86_400_000) fail(`invalid ${key} "${raw}" in mysql sink URI: between 100ms and 24h`);
  return ms;
}

/**
 * Parses `mysql://user:password@host:port/?worker-count=16&…` (and `tidb://`). Pure: files named by ssl-* are
 * read when the sink is created, not here. Every refusal names the key, the value and what is allowed, and
 * never the password.
 */
export function parseMySqlConfig(uri: URL): MySqlSinkConfig {
  const scheme = uri.protocol.replace(':', '');
  if (scheme !== 'mysql' && scheme !== 'tidb') fail(`the mysql sink takes mysql:// and tidb:// URIs, not ${scheme}://`);
  if (uri.hostname === '') fail('the mysql sink URI names no host: use mysql://user:password@host:port/');
  for (const key of uri.searchParams.keys()) {
    if (!(PARAMS as readonly string[]).includes(key)) fail(`unknown parameter "${key}" in mysql sink URI; allowed: ${PARAMS.join(', ')}`);
  }
  if (uri.pathname !== '' && uri.pathname !== '/') fail(`the mysql sink URI takes no database path ("${uri.pathname}"): rows go to the upstream's database names`);
  const port = uri.port === '' ? 3306 : Number(uri.port);
  const timeZone = uri.searchParams.get('time-zone') ?? '+00:00';
  if (!/^([+-]\d{2}:\d{2}|[A-Za-z_]+(\/[A-Za-z_+-]+)*|SYSTEM)$/.test(timeZone)) fail(`invalid time-zone "${timeZone}" in mysql sink URI: an offset such as +08:00 or a zone name such as Asia/Shanghai`);
  const ssl = parseSsl(uri.searchParams);
  return {
    host: uri.hostname,
    port,
    user: decodeURIComponent(uri.username || 'root'),
    password: decodeURIComponent(uri.password),
    workerCount: int(uri, 'worker-count', 16, 1, 1024),
    maxTxnRow: int(uri, 'max-txn-row', 256, 1, 1_000_000),
    batchDmlEnable: bool(uri, 'batch-dml-enable', true),
    safeMode: bool(uri, 'safe-mode', false),
    safeModeDurationMs: uri.searchParams.get('safe-mode-duration') === '0' ? 0 : duration(uri, 'safe-mode-duration', 60_000),
    timeZone,
    ssl,
    readTimeoutMs: duration(uri, 'read-timeout', 120_000),
    writeTimeoutMs: duration(uri, 'write-timeout', 120_000),
    multiStmtEnable: bool(uri, 'multi-stmt-enable', true),
    forceReplicate: bool(uri, 'force-replicate', false),
    tidb: scheme === 'tidb',
  };
}

function parseSsl(params: URLSearchParams): SslConfig {
  const raw = params.get('ssl-mode');
  const ca = params.get('ssl-ca') ?? undefined;
  const cert = params.get('ssl-cert') ?? undefined;
  const key = params.get('ssl-key') ?? undefined;
  for (const [name, value] of [['ssl-ca', ca], ['ssl-cert', cert], ['ssl-key', key]] as const) {
    if (value === '') fail(`${name} in mysql sink URI is empty: give the path of a PEM file`);
  }
  let mode: SslMode;
  if (raw === null) mode = ca !== undefined ? 'verify-ca' : 'preferred';
  else {
    const normalized = raw.toLowerCase().replace(/_/g, '-');
    if (!(SSL_MODES as readonly string[]).includes(normalized)) fail(`invalid ssl-mode "${raw}" in mysql sink URI: one of ${SSL_MODES.join(', ')}`);
    mode = normalized as SslMode;
  }
  if ((cert === undefined) !== (key === undefined)) fail('ssl-cert and ssl-key in mysql sink URI go together');
  if (mode === 'disabled' && (ca !== undefined || cert !== undefined)) fail('ssl-mode=disabled in mysql sink URI makes no TLS connection, so ssl-ca, ssl-cert and ssl-key mean nothing: drop them or choose another ssl-mode');
  if ((mode === 'verify-ca' || mode === 'verify-identity') && ca === undefined) fail(`ssl-mode=${mode} in mysql sink URI needs ssl-ca, the CA certificate that signed the server's (PEM file)`);
  if ((mode === 'preferred' || mode === 'required') && ca !== undefined) {
    fail(`ssl-mode=${mode} in mysql sink URI does not verify the server's certificate, so ssl-ca would be ignored: use ssl-mode=verify-ca or verify-identity to verify it, or drop ssl-ca`);
  }
  return { mode, ...(ca === undefined ? {} : { ca }), ...(cert === undefined ? {} : { cert }), ...(key === undefined ? {} : { key }) };
}

/**
 * The mysql2 `ssl` option for ssl-mode, with the files named by ssl-* read (at create time); undefined for
 * disabled. verify-ca checks the chain (rejectUnauthorized), verify-identity also the host (verifyIdentity).
 */
export function readSsl(ssl: SslConfig): { ca?: string; cert?: string; key?: string; rejectUnauthorized: boolean; verifyIdentity: boolean } | undefined {
  if (ssl.mode === 'disabled') return undefined;
  const read = (what: string, path: string | undefined): string | undefined => {
    if (path === undefined) return undefined;
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      return fail(`cannot read ${what} "${path}" named in the mysql sink URI: ${(error as Error).message}`);
    }
  };
  const ca = read('ssl-ca', ssl.ca);
  const cert = read('ssl-cert', ssl.cert);
  const key = read('ssl-key', ssl.key);
  const verify = ssl.mode === 'verify-ca' || ssl.mode === 'verify-identity';
  return {
    ...(ca === undefined ? {} : { ca }),
    ...(cert === undefined ? {} : { cert }),
    ...(key === undefined ? {} : { key }),
    rejectUnauthorized: verify,
    verifyIdentity: ssl.mode === 'verify-identity',
  };
}

const CERTIFICATE_PROBLEMS: readonly [RegExp, string][] = [
  [/certificate has expired/i, 'the server certificate has expired: renew it'],
  [/certificate is not yet valid/i, 'the server certificate is not valid yet (check the clocks)'],
  [/unable to verify the first certificate|unable to get (local )?issuer certificate|self[- ]signed certificate|certificate signature failure/i, 'the server certificate is not signed by the CA in ssl-ca (wrong CA?)'],
  [/Hostname\/IP does not match certificate's altnames/i, 'the server certificate does not name the host of the URI (ssl-mode=verify-identity)'],
];

/**
 * What went wrong with TLS when the downstream could not be reached, for the operator (undefined when TLS is not
 * the problem). `plaintextRefused`: the login went in plaintext and a TLS-only server refused it.
 */
export function tlsProblem(error: unknown, ssl: SslConfig, plaintextRefused = false): string | undefined {
  const e = error as { code?: string; message?: string };
  const message = e.message ?? String(error);
  if (e.code === 'HANDSHAKE_NO_SSL_SUPPORT') return `the downstream offers no TLS, and ssl-mode=${ssl.mode} requires it: enable TLS on the server or lower ssl-mode`;
  if (plaintextRefused) return `the downstream accepts this user only over TLS (require_secure_transport) and the connection was in plaintext (ssl-mode=${ssl.mode}): add ssl-mode=verify-identity&ssl-ca=<CA file> to the sink URI`;
  for (const [re, what] of CERTIFICATE_PROBLEMS) if (re.test(message)) return `TLS failed: ${what} (${message})`;
  if (e.code === 'HANDSHAKE_SSL_ERROR') return `TLS handshake failed: ${message}`;
  return undefined;
}
