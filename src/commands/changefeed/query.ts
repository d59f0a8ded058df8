import { Flags } from '@oclif/core';
import { BaseCommand } from '../../cli/base-command.js';
import { formatDetail, formatSummary } from '../../cli/changefeed-output.js';
import { changefeedIdFlag, namespaceFlag, connectionFlags, apiClientOf } from '../../cli/flags.js';
import type { ChangefeedDetail, ChangefeedSummary } from '../../core/api/model.js';

export default class ChangefeedQuery extends BaseCommand {
  static override description = 'Show one changefeed: state, checkpoint (ts, binlog coordinate and time), error, config.';
  static override aliases = ['cli:changefeed:query'];
  static override flags = {
    ...connectionFlags,
    namespace: namespaceFlag,
    'changefeed-id': changefeedIdFlag,
    simple: Flags.boolean({ char: 's', description: 'only the state, checkpoint and error' }),
  };

  async run(): Promise<ChangefeedDetail | ChangefeedSummary> {
    const { flags } = await this.parse(ChangefeedQuery);
    const detail = await apiClientOf(flags).changefeed(flags['changefeed-id'], flags.namespace);
    if (flags.simple) {
      const { namespace, id, upstream_id, state, checkpoint_tso, checkpoint_coordinate, checkpoint_time, error } = detail;
      const simple: ChangefeedSummary = { namespace, id, upstream_id, state, checkpoint_tso, checkpoint_coordinate, checkpoint_time, error };
      this.log(formatSummary(simple));
      return simple;
    }
    this.log(formatDetail(detail));
    return detail;
  }
}
