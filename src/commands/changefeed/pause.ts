import { BaseCommand } from '../../cli/base-command.js';
import { changefeedIdFlag, namespaceFlag, connectionFlags, apiClientOf } from '../../cli/flags.js';
import type { ChangefeedDetail } from '../../core/api/model.js';

export default class ChangefeedPause extends BaseCommand {
  static override description = 'Pause a changefeed (state stopped); its checkpoint is kept and resume continues from it.';
  static override aliases = ['cli:changefeed:pause'];
  static override flags = { ...connectionFlags, namespace: namespaceFlag, 'changefeed-id': changefeedIdFlag };

  async run(): Promise<ChangefeedDetail> {
    const { flags } = await this.parse(ChangefeedPause);
    const id = flags['changefeed-id'];
    const result = await apiClientOf(flags).pauseChangefeed(id, flags.namespace);
    this.log(`Changefeed ${id} paused (state ${result.state}, checkpoint ${result.checkpoint_tso}).`);
    return result;
  }
}
