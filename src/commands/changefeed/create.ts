import { readFile } from 'node:fs/promises';
import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { formatDetail } from '../../cli/changefeed-output.js';
import { namespaceFlag, connectionFlags, apiClientOf } from '../../cli/flags.js';
import { TidemarkError } from '../../core/errors/index.js';
import type { ChangefeedDetail } from '../../core/api/model.js';
import { readReplicaConfigText } from '../../core/config/replica-config.js';

/** How long create waits for the server: it reads the upstream (preflight, start position, a snapshot's schema) first. */
const CREATE_TIMEOUT_MS = 120_000;

export default class ChangefeedCreate extends BaseCommand {
  static override description = 'Create a changefeed: replicate the upstream binlog from --start-ts to the sink.';
  static override aliases = ['cli:changefeed:create'];
  static override examples = [
    '<%= config.bin %> changefeed create --sink-uri blackhole:// --upstream mysql://root@127.0.0.1:3307',
    '<%= config.bin %> changefeed create -c orders --sink-uri "mysql://user:pass@10.0.0.2:3306/" --start-ts mysql-bin.000042:1234 --config changefeed.toml',
    '<%= config.bin %> changefeed create -c shop --sink-uri "mysql://user:pass@10.0.0.2:3306/" --snapshot initial --config changefeed.toml',
  ];
  static override flags = {
    ...connectionFlags,
    namespace: namespaceFlag,
    'changefeed-id': Flags.string({ char: 'c', description: 'changefeed id [default: a new UUID]' }),
    'sink-uri': Flags.string({ description: 'where to replicate to, e.g. blackhole://, mysql://…, kafka://…', required: true }),
    'start-ts': Flags.string({ description: 'ts, binlog coordinate (mysql-bin.000042:1234) or time (2026-11-23T06:00:00Z, UTC without a zone) to start from [default: the upstream\'s end of binlog]' }),
    'target-ts': Flags.string({ description: 'ts or binlog coordinate to stop at (the changefeed ends finished)' }),
    config: Flags.string({ description: 'changefeed config file (changefeed.toml, TiCDC format; JSON accepted)' }),
    upstream: Flags.string({ description: 'upstream mysql:// URI [default: the server\'s --upstream]' }),
    snapshot: Flags.string({
      description:
        'what to copy before streaming: never (stream from --start-ts), schema (create the selected databases and tables in the sink from their upstream definitions, then stream from there), initial (schema, then the existing rows of every selected table, lock-free and reconciled with the binlog; [snapshot] chunk-rows and parallelism tune it) [default: never, or [snapshot] mode of --config]',
      options: ['never', 'schema', 'initial'],
    }),
  };

  async run(): Promise<ChangefeedDetail> {
    const { flags } = await this.parse(ChangefeedCreate);
    // create reads the upstream (preflight, start position, the snapshot's schema) before it answers: give it time
    const created = await apiClientOf(flags, CREATE_TIMEOUT_MS).createChangefeed({
      changefeed_id: flags['changefeed-id'],
      namespace: flags.namespace,
      sink_uri: flags['sink-uri'],
      start_ts: flags['start-ts'],
      target_ts: flags['target-ts'],
      upstream: flags.upstream,
      replica_config: withSnapshotMode(flags.config === undefined ? undefined : await readConfigFile(flags.config), flags.snapshot),
    });
    this.log(`Create changefeed successfully!\n${formatDetail(created)}`);
    return created;
  }
}

/** The config with `--snapshot` as its `[snapshot] mode` (the flag wins over the file). */
function withSnapshotMode(config: unknown, mode: string | undefined): unknown {
  if (mode === undefined) return config;
  const raw = (config ?? {}) as Record<string, unknown>;
  const section = (raw['snapshot'] ?? {}) as Record<string, unknown>;
  return { ...raw, snapshot: { ...section, mode } };
}

/** Reads changefeed.toml (or .json) as a raw object; the server validates it strictly. */
export async function readConfigFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new TidemarkError('ErrConfigUnreadable', `cannot read config file ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  return readReplicaConfigText(text, `config file ${path}`);
}
