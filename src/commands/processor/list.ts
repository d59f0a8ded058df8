import { BaseCommand } from '../../cli/base-command.js';
import { connectionFlags, apiClientOf } from '../../cli/flags.js';
import type { ProcessorSummary } from '../../core/api/model.js';

export default class ProcessorList extends BaseCommand {
  static override description = 'List the processors: which captures run which changefeeds.';
  static override aliases = ['cli:processor:list'];
  static override flags = { ...connectionFlags };

  async run(): Promise<ProcessorSummary[]> {
    const { flags } = await this.parse(ProcessorList);
    const items = await apiClientOf(flags).processors();
    this.log(items.length === 0 ? 'No processors.' : items.map((p) => `${p.namespace}/${p.changefeed_id}  on capture ${p.capture_id}`).join('\n'));
    return items;
  }
}
