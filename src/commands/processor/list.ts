import { BaseCommand } from '../../cli/base-command.js';
import { serverFlag } from '../../cli/flags.js';
import { ApiClient } from '../../core/api/client.js';

export interface ProcessorSummary {
  readonly namespace: string;
  readonly changefeed_id: string;
  readonly capture_id: string;
}

export default class ProcessorList extends BaseCommand {
  static override description = 'List the processors: which captures run which changefeeds.';
  static override aliases = ['cli:processor:list'];
  static override flags = { server: serverFlag };

  async run(): Promise<ProcessorSummary[]> {
    const { flags } = await this.parse(ProcessorList);
    const { items } = await new ApiClient(flags.server).get<{ items: ProcessorSummary[] }>('/api/v2/processors');
    this.log(items.length === 0 ? 'No processors.' : items.map((p) => `${p.namespace}/${p.changefeed_id}  on capture ${p.capture_id}`).join('\n'));
    return items;
  }
}
