import { TidemarkError } from '../errors/index.js';

/** Query parameters that hold a secret (the Kafka sink's `sasl-password`, any `…password`, `…secret`, `…token`). */
const SECRET_PARAM = /(password|secret|token)$/i;

/** A URI with its password replaced, in the user part and in secret parameters, for messages, logs and API answers. */
export function redactUri(uri: string): string {
  try {
    const url = new URL(uri);
    if (url.password !== '') url.password = 'xxxxx';
    for (const name of [...url.searchParams.keys()]) if (SECRET_PARAM.test(name)) url.searchParams.set(name, 'xxxxx');
    return url.toString();
  } catch {
    return uri.replace(/:[^:@/]*@/, ':xxxxx@').replace(/([?&][a-z0-9_-]*(?:password|secret|token)=)[^&#\s]*/gi, '$1xxxxx');
  }
}

/**
 * Command-line arguments with the password of every URI in them replaced (`--upstream mysql://u:pw@h` and
 * `--sink-uri=mysql://…`), or undefined when none holds one: for the process title, which `ps` shows to anyone.
 */
export function redactArgs(args: readonly string[]): string[] | undefined {
  let changed = false;
  const out = args.map((arg) => {
    const redacted = arg.replace(/([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*):[^@/\s]+@/gi, '$1:xxxxx@').replace(/([?&][a-z0-9_-]*(?:password|secret|token)=)[^&#\s]*/gi, '$1xxxxx');
    if (redacted !== arg) changed = true;
    return redacted;
  });
  return changed ? out : undefined;
}

/**
 * MySQL's --ssl-mode values, with MySQL's meanings:
 * - disabled: plaintext;
 * - preferred: TLS when the server offers it, plaintext otherwise; the certificate is not verified;
 * - required: TLS or nothing; the certificate is not verified;
 * - verify-ca: required, and the server's certificate must chain to ssl-ca (and be valid now);
 * - verify-identity: verify-ca, and the certificate must name the host of the URI (SAN, or CN).
 */
export const SSL_MODES = ['disabled', 'preferred', 'required', 'verify-ca', 'verify-identity'] as const;
export type SslMode = (typeof SSL_MODES)[number];

/** The parameters an upstream URI takes (and `cdc diff --downstream`). */
export const UPSTREAM_URI_PARAMS = ['ssl-mode', 'ssl-ca', 'ssl-cert', 'ssl-key'] as const;

/** TLS settings of a MySQL connection; the files are paths, read when a connection is made. */
export interface TlsSettings {
  readonly mode: SslMode;
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

/**
 * One parsed mysql:// URI: what every connection to that server is made with (the replication connection
 * of our protocol client and every mysql2 connection). `password` is never in a message.
 */
export interface MySqlConnectionOptions {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  /** The database path of the URI, if any (kept for mysql2 connections, as before). */
  readonly database?: string;
  readonly tls: TlsSettings;
}

function invalid(what: string, uri: string, message: string): never {
  throw new TidemarkError('ErrUpstreamURIInvalid', `invalid ${what} URI "${redactUri(uri)}": ${message}`);
}

/**
 * Parses the TLS parameters of a mysql:// URI with MySQL's names and meanings (see SslMode). Without ssl-mode,
 * the mode is verify-ca when ssl-ca is given (as MySQL 5.7 implied it, and as the mysql sink always did), else
 * preferred (MySQL's default). Combinations whose meaning would surprise are refused with the fix: a CA that
 * would not be checked (ssl-ca with preferred/required), a verification without a CA, files with disabled,
 * ssl-cert without ssl-key. Returns an error message instead of throwing, for callers with their own error type.
 */
export function parseTlsParams(params: URLSearchParams): TlsSettings | string {
  const rawMode = params.get('ssl-mode');
  const ca = params.get('ssl-ca') ?? undefined;
  const cert = params.get('ssl-cert') ?? undefined;
  const key = params.get('ssl-key') ?? undefined;
  for (const [name, value] of [['ssl-ca', ca], ['ssl-cert', cert], ['ssl-key', key]] as const) {
    if (value === '') return `${name} is empty: give the path of a PEM file`;
  }
  let mode: SslMode;
  if (rawMode === null) mode = ca !== undefined ? 'verify-ca' : 'preferred';
  else {
    const normalized = rawMode.toLowerCase().replace(/_/g, '-');
    if (!(SSL_MODES as readonly string[]).includes(normalized)) return `invalid ssl-mode "${rawMode}": one of ${SSL_MODES.join(', ')}`;
    mode = normalized as SslMode;
  }
  if ((cert === undefined) !== (key === undefined)) return 'ssl-cert and ssl-key go together (the client certificate and its private key)';
  if (mode === 'disabled' && (ca !== undefined || cert !== undefined)) return 'ssl-mode=disabled makes no TLS connection, so ssl-ca, ssl-cert and ssl-key mean nothing: drop them or choose another ssl-mode';
  if ((mode === 'verify-ca' || mode === 'verify-identity') && ca === undefined) return `ssl-mode=${mode} needs ssl-ca, the CA certificate that signed the server's (PEM file)`;
  if ((mode === 'preferred' || mode === 'required') && ca !== undefined) {
    return `ssl-mode=${mode} does not verify the server's certificate, so ssl-ca would be ignored: use ssl-mode=verify-ca or verify-identity to verify it, or drop ssl-ca`;
  }
  return { mode, ...(ca === undefined ? {} : { ca }), ...(cert === undefined ? {} : { cert }), ...(key === undefined ? {} : { key }) };
}

/**
 * Parses a `mysql://user:password@host:port/?ssl-mode=…&ssl-ca=…&ssl-cert=…&ssl-key=…` URI of the upstream (or,
 * with `what`, another MySQL server such as `cdc diff --downstream`). Unknown parameters are refused, naming the
 * allowed ones (`extraParams` adds some that the caller reads itself). Errors are ErrUpstreamURIInvalid and name
 * the URI without its password.
 */
export function parseMySqlUri(uri: string, what = 'upstream', extraParams: readonly string[] = []): MySqlConnectionOptions {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return invalid(what, uri, 'not a URI: use mysql://user:password@host:port/');
  }
  const schemes = what === 'upstream' ? ['mysql:'] : ['mysql:', 'tidb:'];
  if (!schemes.includes(url.protocol)) invalid(what, uri, `the scheme is ${url.protocol.replace(/:$/, '')}://, not ${schemes.map((s) => `${s}//`).join(' or ')}`);
  if (url.hostname === '') invalid(what, uri, 'no host: use mysql://user:password@host:port/');
  const allowed = [...UPSTREAM_URI_PARAMS, ...extraParams];
  for (const name of url.searchParams.keys()) {
    if (!allowed.includes(name)) invalid(what, uri, `unknown parameter "${name}"; allowed: ${allowed.join(', ')}`);
  }
  for (const name of UPSTREAM_URI_PARAMS) {
    if (url.searchParams.getAll(name).length > 1) invalid(what, uri, `${name} is given more than once`);
  }
  const tls = parseTlsParams(url.searchParams);
  if (typeof tls === 'string') invalid(what, uri, tls);
  const port = url.port === '' ? 3306 : Number(url.port);
  const database = decodeURIComponent(url.pathname.replace(/^\//, ''));
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port,
    user: decodeURIComponent(url.username || 'root'),
    password: decodeURIComponent(url.password),
    ...(database === '' ? {} : { database }),
    tls,
  };
}
