import { BaseCommand } from '../../cli/base-command.js';
import { changefeedIdFlag, namespaceFlag, connectionFlags, apiClientOf } from '../../cli/flags.js';

export default class ChangefeedRemove extends BaseCommand {
  static override description = 'Remove a changefeed: its info, status and task positions are deleted.';
  static override aliases = ['cli:changefeed:remove'];
  static override flags = { ...connectionFlags, namespace: namespaceFlag, 'changefeed-id': changefeedIdFlag };

  async run(): Promise<{ id: string }> {
    const { flags } = await this.parse(ChangefeedRemove);
    const id = flags['changefeed-id'];
    await apiClientOf(flags).removeChangefeed(id, flags.namespace);
    this.log(`Changefeed ${id} removed.`);
    return { id };
  }
}
