import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { changefeedIdFlag, namespaceFlag, connectionFlags, apiClientOf } from '../../cli/flags.js';
import type { ChangefeedDetail } from '../../core/api/model.js';

export default class ChangefeedResume extends BaseCommand {
  static override description = 'Resume a stopped, failed or finished changefeed from its checkpoint (or from --overwrite-checkpoint-ts).';
  static override aliases = ['cli:changefeed:resume'];
  static override flags = {
    ...connectionFlags,
    namespace: namespaceFlag,
    'changefeed-id': changefeedIdFlag,
    'overwrite-checkpoint-ts': Flags.string({ description: 'restart from this ts or binlog coordinate instead of the checkpoint' }),
  };

  async run(): Promise<ChangefeedDetail> {
    const { flags } = await this.parse(ChangefeedResume);
    const id = flags['changefeed-id'];
    const result = await apiClientOf(flags).resumeChangefeed(id, flags.namespace, flags['overwrite-checkpoint-ts']);
    this.log(`Changefeed ${id} resumed (state ${result.state}, checkpoint ${result.checkpoint_tso}).`);
    return result;
  }
}
