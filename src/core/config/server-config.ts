import { cosmiconfig } from 'cosmiconfig';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { TidemarkError } from '../errors/index.js';
import { LOG_LEVELS } from '../logger/logger.js';
import { DEFAULT_CLUSTER_ID, validateClusterId } from './cluster-id.js';

/** Each key once, as it is spelled in server.toml and quoted in messages. */
export const serverConfigKeys = {
  pd: 'pd',
  addr: 'addr',
  advertiseAddr: 'advertise-addr',
  dataDir: 'data-dir',
  clusterId: 'cluster-id',
  logLevel: 'log-level',
  logFile: 'log-file',
  upstream: 'upstream',
  captureSessionTtl: 'capture-session-ttl',
  perTableMetrics: 'per-table-metrics',
  heapGrowth: 'heap-growth',
  security: 'security',
} as const;

/** The keys of the `[security]` table (TiCDC's names where TiCDC has them). */
export const securityConfigKeys = {
  caPath: 'ca-path',
  certPath: 'cert-path',
  keyPath: 'key-path',
  certAllowedCn: 'cert-allowed-cn',
  etcdUser: 'etcd-user',
  etcdPassword: 'etcd-password',
  clientUserList: 'client-user-list',
  clientAuthReads: 'client-auth-reads',
} as const;

/** Keys whose values are secrets: never quoted in a message. */
const SECRET_KEYS = new Set<string>([`security.${securityConfigKeys.etcdPassword}`, `security.${securityConfigKeys.clientUserList}`]);

/** An API user's stored password: `scrypt$N$r$p$salt$hash` (base64), as `cdc hash-password` prints it. */
export const PASSWORD_HASH_PATTERN = /^scrypt\$\d{1,8}\$\d{1,3}\$\d{1,3}\$[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}$/;
const API_USER_PATTERN = /^[A-Za-z0-9_.@-]{1,64}$/;

const securitySchema = z
  .object({
    [securityConfigKeys.caPath]: z.string().min(1).optional().describe('PEM CA: verifies etcd, the other captures and client certificates'),
    [securityConfigKeys.certPath]: z.string().min(1).optional().describe('PEM certificate this capture serves (and presents to etcd and its peers)'),
    [securityConfigKeys.keyPath]: z.string().min(1).optional().describe('PEM private key of cert-path'),
    [securityConfigKeys.certAllowedCn]: z.array(z.string().min(1)).default([]).describe('client certificate common names allowed to connect; empty: any certificate of the CA, or none'),
    [securityConfigKeys.etcdUser]: z.string().min(1).optional().describe('etcd user (etcd authentication)'),
    [securityConfigKeys.etcdPassword]: z.string().min(1).optional().describe('password of etcd-user (or TIDEMARK_ETCD_PASSWORD)'),
    [securityConfigKeys.clientUserList]: z
      .record(
        z.string().regex(API_USER_PATTERN, 'an API user name is 1 to 64 letters, digits, _ . @ -'),
        z.string().regex(PASSWORD_HASH_PATTERN, 'must be a password hash made by `cdc hash-password` (scrypt$N$r$p$salt$hash), never the password itself'),
      )
      .default({})
      .describe('API users: name = scrypt hash; when any, writes need one of them'),
    [securityConfigKeys.clientAuthReads]: z.boolean().default(false).describe('reads need an API user too (status, health and metrics stay open)'),
  })
  .strict();

export type SecurityConfig = Readonly<z.infer<typeof securitySchema>>;

const hostPort = z.string().regex(/^[^\s:]+:\d{1,5}$/, 'must be host:port, for example 127.0.0.1:8300');

export const serverConfigSchema = z
  .object({
    [serverConfigKeys.pd]: z.string().min(1).default('http://127.0.0.1:2379').describe('etcd endpoints, comma-separated'),
    [serverConfigKeys.addr]: hostPort.default('127.0.0.1:8300').describe('address the HTTP API listens on'),
    [serverConfigKeys.advertiseAddr]: hostPort.optional().describe('address other captures and the CLI reach; defaults to addr'),
    [serverConfigKeys.dataDir]: z.string().min(1).default('./.tidemark-data').describe('sorter spill and other local data'),
    [serverConfigKeys.clusterId]: z.string().default(DEFAULT_CLUSTER_ID).describe('the cluster this capture joins'),
    [serverConfigKeys.logLevel]: z.enum(LOG_LEVELS).default('info'),
    [serverConfigKeys.logFile]: z.string().min(1).optional().describe('log to this file instead of stderr'),
    [serverConfigKeys.upstream]: z.string().optional().describe('default upstream mysql:// URI for changefeeds'),
    [serverConfigKeys.captureSessionTtl]: z.number().int().min(1).max(600).default(10).describe('etcd session TTL in seconds'),
    [serverConfigKeys.perTableMetrics]: z.boolean().default(false).describe('export per-table series (a table label) on /metrics'),
    [serverConfigKeys.heapGrowth]: z
      .number()
      .min(1.1, 'must be at least 1.1 (the heap may grow 10 % past what is live before a full collection)')
      .max(4, 'must be at most 4 (V8 grows the heap at most 4× past what is live)')
      .default(2)
      .describe('how far the JavaScript heap may grow past what is live before a full collection (V8 picks up to 4× on its own)'),
    [serverConfigKeys.security]: securitySchema.default({}).describe('TLS, etcd and API authentication'),
  })
  .strict();

export type ServerConfig = Readonly<z.infer<typeof serverConfigSchema>>;
export type ServerConfigInput = z.input<typeof serverConfigSchema>;

/** Where `cdc server` looks for its config in the working directory when --config is not given. */
export const SERVER_CONFIG_SEARCH_PLACES = [
  '.tidemarkrc',
  '.tidemarkrc.toml',
  '.tidemarkrc.json',
  '.tidemarkrc.yaml',
  '.tidemarkrc.yml',
  'tidemark.config.toml',
  'tidemark.config.json',
  'tidemark.config.yaml',
];

/**
 * Loads the server config from `path`, or, without one, from the first of SERVER_CONFIG_SEARCH_PLACES in
 * `cwd` (none found = no file). Returns the raw values and the file they came from. An unreadable file or a
 * syntax error is a TidemarkError naming the file; keys and values are checked by resolveServerConfig.
 */
export async function loadServerConfig(path?: string, cwd = process.cwd()): Promise<{ config: ServerConfigInput; file: string | undefined }> {
  const explorer = cosmiconfig('tidemark', {
    loaders: { '.toml': (_file: string, content: string) => parseToml(content), noExt: (_file: string, content: string) => parseToml(content) },
    searchPlaces: SERVER_CONFIG_SEARCH_PLACES,
    searchStrategy: 'none',
    cache: false,
  });
  let loaded;
  try {
    loaded = path === undefined ? await explorer.search(cwd) : await explorer.load(path);
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    if (err.code === 'ENOENT' || err.code === 'EACCES' || err.code === 'EISDIR') {
      throw new TidemarkError('ErrConfigUnreadable', `cannot read config file ${path ?? cwd}: ${err.code}`, { cause: error });
    }
    throw new TidemarkError('ErrConfigInvalid', `config file ${path ?? (err as { filepath?: string }).filepath ?? cwd} is not valid: ${err.message}`, { cause: error });
  }
  const file = loaded?.filepath;
  const raw: unknown = loaded?.config ?? {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new TidemarkError('ErrConfigInvalid', `config file ${file ?? path} must hold a table of keys, not ${JSON.stringify(raw)}`);
  }
  return { config: raw, file };
}

/** The `[security]` values given as flags; each one set wins over the file's. */
export type SecurityFlags = { readonly [K in keyof z.input<typeof securitySchema>]?: z.input<typeof securitySchema>[K] | undefined };

/**
 * Merges the file's values with the flags (flags win; `security` key by key), validates, and freezes. A secret
 * (etcd-password, a client-user-list entry) is never quoted in an error.
 */
export function resolveServerConfig(fromFile: ServerConfigInput, fromFlags: Partial<ServerConfigInput> & { security?: SecurityFlags }, source = 'config'): ServerConfig {
  const merged: Record<string, unknown> = { ...fromFile };
  for (const [key, value] of Object.entries(fromFlags)) {
    if (value === undefined) continue;
    if (key === serverConfigKeys.security && isTable(value) && isTable(merged[key])) {
      const section: Record<string, unknown> = { ...merged[key] };
      for (const [k, v] of Object.entries(value)) if (v !== undefined) section[k] = v;
      merged[key] = section;
    } else if (key === serverConfigKeys.security && isTable(value)) {
      merged[key] = Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined));
    } else merged[key] = value;
  }
  const result = serverConfigSchema.safeParse(merged);
  if (!result.success) {
    const issue = result.error.issues[0];
    if (issue.code === 'unrecognized_keys') {
      const inSecurity = issue.path[0] === serverConfigKeys.security;
      const allowed = inSecurity ? Object.values(securityConfigKeys) : Object.values(serverConfigKeys);
      const keys = inSecurity ? issue.keys.map((k) => `security.${k}`) : issue.keys;
      throw new TidemarkError('ErrConfigUnknownKey', `unknown key "${keys.join('", "')}" in ${source}; allowed${inSecurity ? ' in [security]' : ''}: ${allowed.join(', ')}`, {
        details: { keys, allowed },
      });
    }
    const key = issue.path.join('.');
    const secret = [...SECRET_KEYS].some((k) => key === k || key.startsWith(`${k}.`));
    const got = secret ? '(not shown: a secret)' : JSON.stringify(valueAt(merged, issue.path));
    throw new TidemarkError('ErrConfigInvalid', `invalid value for "${key}" in ${source}: ${issue.message} (got ${got})`, {
      details: { key },
    });
  }
  validateClusterId(result.data[serverConfigKeys.clusterId]);
  validateSecurity(result.data.security, source);
  return Object.freeze({ ...result.data, security: Object.freeze(result.data.security) });
}

/** Combinations that cannot work, refused before anything starts. */
function validateSecurity(security: SecurityConfig, source: string): void {
  const invalid = (message: string, key: string): TidemarkError => new TidemarkError('ErrConfigInvalid', `${message} in ${source}`, { details: { key: `security.${key}` } });
  const cert = security[securityConfigKeys.certPath];
  const key = security[securityConfigKeys.keyPath];
  if ((cert === undefined) !== (key === undefined)) {
    throw invalid(`--cert (security.cert-path) and --key (security.key-path) go together; got only ${cert === undefined ? '--key' : '--cert'}`, cert === undefined ? securityConfigKeys.certPath : securityConfigKeys.keyPath);
  }
  if (security[securityConfigKeys.certAllowedCn].length > 0 && (security[securityConfigKeys.caPath] === undefined || cert === undefined)) {
    throw invalid('--cert-allowed-cn (security.cert-allowed-cn) needs --ca, --cert and --key: client certificates are checked only on a TLS server that has the CA', securityConfigKeys.certAllowedCn);
  }
  if (security[securityConfigKeys.etcdPassword] !== undefined && security[securityConfigKeys.etcdUser] === undefined) {
    throw invalid('an etcd password (security.etcd-password, --etcd-password or TIDEMARK_ETCD_PASSWORD) needs --etcd-user (security.etcd-user)', securityConfigKeys.etcdUser);
  }
  if (security[securityConfigKeys.etcdUser] !== undefined && security[securityConfigKeys.etcdPassword] === undefined) {
    throw invalid(`the etcd user "${security[securityConfigKeys.etcdUser]}" needs a password: set TIDEMARK_ETCD_PASSWORD (or security.etcd-password, --etcd-password)`, securityConfigKeys.etcdPassword);
  }
}

function isTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let value = root;
  for (const part of path) value = isTable(value) || Array.isArray(value) ? (value as Record<PropertyKey, unknown>)[part] : undefined;
  return value;
}
