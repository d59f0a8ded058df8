import { BaseCommand } from '../../cli/base-command.js';
import { formatTable } from '../../cli/table.js';
import { apiClientOf, connectionFlags } from '../../cli/flags.js';
import type { CaptureSummary } from '../../core/api/model.js';

export default class CaptureList extends BaseCommand {
  static override description = 'List the captures of the cluster and which one is the owner.';
  static override aliases = ['cli:capture:list'];
  static override examples = ['<%= config.bin %> capture list --server http://127.0.0.1:8300', '<%= config.bin %> cli capture list --json'];
  static override flags = {
    ...connectionFlags,
  };

  async run(): Promise<CaptureSummary[]> {
    const { flags } = await this.parse(CaptureList);
    const items = await apiClientOf(flags).captures();
    if (!this.jsonEnabled()) {
      this.log(formatTable(['ID', 'ROLE', 'ADDRESS', 'CLUSTER'], items.map((c) => [c.id, c.is_owner ? 'owner' : '', c.address, c.cluster_id])));
    }
    return items;
  }
}
