import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { formatSummary } from '../../cli/changefeed-output.js';
import { connectionFlags, apiClientOf } from '../../cli/flags.js';
import type { ChangefeedSummary } from '../../core/api/model.js';

export default class ChangefeedList extends BaseCommand {
  static override description = 'List changefeeds with their state and checkpoint (finished and removed ones only with --all).';
  static override aliases = ['cli:changefeed:list'];
  static override flags = {
    ...connectionFlags,
    all: Flags.boolean({ char: 'a', description: 'include finished and removed changefeeds' }),
  };

  async run(): Promise<ChangefeedSummary[]> {
    const { flags } = await this.parse(ChangefeedList);
    const items = await apiClientOf(flags).changefeeds({ all: flags.all });
    this.log(items.length === 0 ? 'No changefeeds.' : items.map(formatSummary).join('\n'));
    return items;
  }
}
