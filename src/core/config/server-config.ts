import { cosmiconfig } from 'cosmiconfig';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { TidemarkError } from '../errors/index.js';
import { LOG_LEVELS } from '../logger/logger.js';
import { DEFAULT_CLUSTER_ID } from '../orchestrator/etcd-keys.js';
import { validateClusterId } from './cluster-id.js';

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
} as const;

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

/** Merges the file's values with the flags (flags win), validates, and freezes. */
export function resolveServerConfig(fromFile: ServerConfigInput, fromFlags: Partial<ServerConfigInput>, source = 'config'): ServerConfig {
  const merged: Record<string, unknown> = { ...fromFile };
  for (const [key, value] of Object.entries(fromFlags)) if (value !== undefined) merged[key] = value;
  const result = serverConfigSchema.safeParse(merged);
  if (!result.success) {
    const issue = result.error.issues[0];
    if (issue.code === 'unrecognized_keys') {
      throw new TidemarkError('ErrConfigUnknownKey', `unknown key "${issue.keys.join('", "')}" in ${source}; allowed: ${Object.values(serverConfigKeys).join(', ')}`, {
        details: { keys: issue.keys, allowed: Object.values(serverConfigKeys) },
      });
    }
    const key = issue.path.join('.');
    throw new TidemarkError('ErrConfigInvalid', `invalid value for "${key}" in ${source}: ${issue.message} (got ${JSON.stringify(merged[key])})`, {
      details: { key },
    });
  }
  validateClusterId(result.data[serverConfigKeys.clusterId]);
  return Object.freeze(result.data);
}
