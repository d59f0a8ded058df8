import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { formatDetail } from '../../cli/changefeed-output.js';
import { changefeedIdFlag, namespaceFlag, connectionFlags, apiClientOf } from '../../cli/flags.js';
import { readConfigFile } from './create.js';
import type { ChangefeedDetail } from '../../core/api/model.js';

export default class ChangefeedUpdate extends BaseCommand {
  static override description = 'Change the sink URI, target-ts or config of a stopped or failed changefeed.';
  static override aliases = ['cli:changefeed:update'];
  static override flags = {
    ...connectionFlags,
    namespace: namespaceFlag,
    'changefeed-id': changefeedIdFlag,
    'sink-uri': Flags.string({ description: 'new sink URI' }),
    'target-ts': Flags.string({ description: 'new target ts or binlog coordinate (0 = no end)' }),
    config: Flags.string({ description: 'new changefeed config file' }),
  };

  async run(): Promise<ChangefeedDetail> {
    const { flags } = await this.parse(ChangefeedUpdate);
    const id = flags['changefeed-id'];
    const result = await apiClientOf(flags).updateChangefeed(id, flags.namespace, {
      sink_uri: flags['sink-uri'],
      target_ts: flags['target-ts'],
      replica_config: flags.config === undefined ? undefined : await readConfigFile(flags.config),
    });
    this.log(`Changefeed ${id} updated.\n${formatDetail(result)}`);
    return result;
  }
}
