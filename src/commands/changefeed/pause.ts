import { BaseCommand } from '../../cli/base-command.js';
import { changefeedIdFlag, namespaceFlag, serverFlag } from '../../cli/flags.js';
import { ApiClient } from '../../core/api/client.js';
import type { ChangefeedDetail } from '../../core/owner/changefeed-admin.js';

export default class ChangefeedPause extends BaseCommand {
  static override description = 'Pause a changefeed (state stopped); its checkpoint is kept and resume continues from it.';
  static override aliases = ['cli:changefeed:pause'];
  static override flags = { server: serverFlag, namespace: namespaceFlag, 'changefeed-id': changefeedIdFlag };

  async run(): Promise<ChangefeedDetail> {
    const { flags } = await this.parse(ChangefeedPause);
    const id = flags['changefeed-id'];
    const result = await new ApiClient(flags.server).pauseChangefeed(id, flags.namespace);
    this.log(`Changefeed ${id} paused (state ${result.state}, checkpoint ${result.checkpoint_tso}).`);
    return result;
  }
}
