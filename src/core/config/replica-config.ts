import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { TidemarkError } from '../errors/index.js';
import { durationMs } from './duration.js';
import { TableFilter } from './table-filter.js';

const filterRules = z
  .array(z.string())
  .default(['*.*'])
  .superRefine((rules, ctx) => {
    try {
      new TableFilter(rules);
    } catch (error) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: (error as Error).message });
    }
  });

/** `[snapshot] mode`: what a new changefeed copies before it streams the binlog. */
export const SNAPSHOT_MODES = ['never', 'schema', 'initial'] as const;
export type SnapshotMode = (typeof SNAPSHOT_MODES)[number];

const snapshotMode = z
  .string()
  .default('never')
  .superRefine((mode, ctx) => {
    if ((SNAPSHOT_MODES as readonly string[]).includes(mode)) return;
    ctx.addIssue({ code: z.ZodIssueCode.custom, message: `"${mode}" is not a snapshot mode; allowed: ${SNAPSHOT_MODES.join(', ')}` });
  })
  .transform((mode) => mode as SnapshotMode);

/**
 * changefeed.toml, TiCDC's format (the keys Tidemark implements): parsed once, strictly (an unknown key is
 * an error naming it), with defaults, into a frozen object. Sink-specific sections belong to the plugins.
 */
export const replicaConfigSchema = z
  .object({
    'case-sensitive': z.boolean().default(false),
    'force-replicate': z.boolean().default(false),
    'memory-quota': z.number().int().min(1 << 20).default(256 * 1024 * 1024).describe('bytes per changefeed per capture before the sorter spills'),
    'enable-sync-point': z.boolean().default(false),
    'sync-point-interval': durationMs(30_000).default('10m'),
    'sync-point-retention': durationMs(3_600_000).default('24h'),
    'changefeed-error-stuck-duration': durationMs(0).default('30m').describe('how long errors are retried before failed'),
    filter: z
      .object({
        rules: filterRules,
        'ignore-txn-start-ts': z.array(z.union([z.number().int(), z.string().regex(/^\d+$/)])).default([]).transform((a) => a.map(String)),
      })
      .strict()
      .default({}),
    /**
     * never: stream from start-ts only (TiCDC's behaviour); schema: at create, the databases and tables the filter
     * selects are created in the sink from their upstream definitions, then the binlog streams from that point;
     * initial: schema, then every selected table's rows are copied in chunks of `chunk-rows` by key, each chunk
     * reconciled with the binlog, up to `parallelism` chunk reads at once per capture (over one table or up to that
     * many tables).
     */
    snapshot: z
      .object({
        mode: snapshotMode,
        'chunk-rows': z
          .number({ invalid_type_error: 'must be a whole number of rows' })
          .int('must be a whole number of rows')
          .min(1, 'must be at least 1 row per chunk')
          .max(1_000_000, 'must be at most 1,000,000 rows per chunk')
          .default(8192),
        parallelism: z
          .number({ invalid_type_error: 'must be a whole number of chunk reads' })
          .int('must be a whole number of chunk reads')
          .min(1, 'must be at least 1 chunk read at a time')
          .max(64, 'must be at most 64 chunk reads at a time')
          .default(4),
      })
      .strict()
      .default({}),
    // the keys Tidemark reads (CORE_SINK_KEYS); the others belong to the sink (SinkFactory.sinkConfigKeys: the
    // Kafka sink's protocol and dispatchers), checked with the sink URI (SinkRegistry.validate)
    sink: z
      .object({
        'safe-mode': z.boolean().default(false),
        // unset: each sink's own default (mysql: table; kafka, blackhole: none)
        'transaction-atomicity': z.enum(['none', 'table']).optional(),
      })
      .passthrough()
      .default({}),
  })
  .strict();

/** The `[sink]` keys Tidemark itself reads, whatever the sink. */
export const CORE_SINK_KEYS = ['safe-mode', 'transaction-atomicity'] as const;

/** The parsed config with durations in ms. */
export type ReplicaConfig = Readonly<z.output<typeof replicaConfigSchema>>;
export type ReplicaConfigInput = z.input<typeof replicaConfigSchema>;

/**
 * Keys of TiCDC's changefeed.toml that Tidemark does not use, with why and what to do: refused by name rather
 * than accepted and ignored.
 */
const NOT_USED: Readonly<Record<string, string>> = {
  mounter: 'Tidemark mounts rows in each table\'s pipeline as they are written, so there are no mounter workers to size; remove the [mounter] section',
};

/** Sections earlier versions wrote into a changefeed's stored config and no version reads any more. */
const DROPPED_FROM_STORED = ['mounter'] as const;

/** Validates a raw config object (from TOML, JSON or the API) into a frozen ReplicaConfig. */
export function parseReplicaConfig(raw: unknown, source = 'changefeed config'): ReplicaConfig {
  const result = replicaConfigSchema.safeParse(raw ?? {});
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue.path.join('.');
    if (issue.code === 'unrecognized_keys') {
      const prefix = where === '' ? '' : `${where}.`;
      const reason = where === '' ? issue.keys.map((k) => NOT_USED[k]).find((r) => r !== undefined) : undefined;
      if (reason !== undefined) {
        const key = issue.keys.find((k) => NOT_USED[k] !== undefined)!;
        throw new TidemarkError('ErrConfigUnknownKey', `key "${key}" of TiCDC's changefeed.toml in ${source} is not used by Tidemark: ${reason}`, { details: { keys: [key], section: '' } });
      }
      throw new TidemarkError('ErrConfigUnknownKey', `unknown key "${issue.keys.map((k) => prefix + k).join('", "')}" in ${source}`, {
        details: { keys: issue.keys, section: where },
      });
    }
    throw new TidemarkError('ErrConfigInvalid', `invalid value for "${where}" in ${source}: ${issue.message}`, { details: { key: where } });
  }
  return deepFreeze(plainObjects(result.data));
}

/** A changefeed's config as stored in etcd by any version: what later versions dropped is left out first. */
export function parseStoredReplicaConfig(raw: unknown, source: string): ReplicaConfig {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return parseReplicaConfig(raw, source);
  const rest: Record<string, unknown> = { ...(raw as Record<string, unknown>) };
  for (const key of DROPPED_FROM_STORED) delete rest[key];
  // earlier versions stored the default `dispatchers = []` under every sink's [sink]; it says nothing
  const sink = rest['sink'];
  if (sink !== null && typeof sink === 'object' && Array.isArray((sink as Record<string, unknown>)['dispatchers']) && ((sink as Record<string, unknown>)['dispatchers'] as unknown[]).length === 0) {
    const { dispatchers: _empty, ...others } = sink as Record<string, unknown>;
    rest['sink'] = others;
  }
  return parseReplicaConfig(rest, source);
}

/**
 * The raw object of a changefeed config file: TOML (changefeed.toml, TiCDC's form), or JSON when `source` ends in
 * .json. The one place a changefeed config's text is parsed: the CLI sends this object, the server validates it.
 */
export function readReplicaConfigText(text: string, source: string): unknown {
  const json = source.endsWith('.json');
  try {
    return json ? (JSON.parse(text) as unknown) : parseToml(text);
  } catch (error) {
    throw new TidemarkError('ErrConfigInvalid', `${source} is not valid ${json ? 'JSON' : 'TOML'}: ${(error as Error).message}`);
  }
}

/** Parses changefeed.toml text. */
export function parseReplicaConfigToml(text: string, source: string): ReplicaConfig {
  return parseReplicaConfig(readReplicaConfigText(text, source), source);
}

/** Turns a parsed config back into its file form (durations as strings), for storing and re-parsing. */
export function replicaConfigToInput(config: ReplicaConfig): ReplicaConfigInput {
  const ms = (n: number): string => `${n}ms`;
  return {
    ...config,
    'sync-point-interval': ms(config['sync-point-interval']),
    'sync-point-retention': ms(config['sync-point-retention']),
    'changefeed-error-stuck-duration': ms(config['changefeed-error-stuck-duration']),
  };
}

/** The sink's own `[sink]` keys pass through as TOML gave them: objects without a prototype become plain ones. */
function plainObjects<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v: unknown) => plainObjects(v)) as T;
  if (value !== null && typeof value === 'object' && (Object.getPrototypeOf(value) === null || Object.getPrototypeOf(value) === Object.prototype)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, plainObjects(v)])) as T;
  }
  return value;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}
