import { Flags } from '@oclif/core';
import { render } from 'ink';
import { BaseCommand } from '../cli/base-command.js';
import { connectionFlags, apiClientOf } from '../cli/flags.js';
import { TopApp } from '../ui/top/app.js';
import { formatSnapshot } from '../ui/top/print.js';
import { fetchSnapshot } from '../ui/top/snapshot.js';
import type { TopSnapshot } from '../ui/top/state.js';

export default class Top extends BaseCommand {
  static override description = 'Watch the cluster live: changefeeds, tables, resolved-ts and checkpoint-ts, lag; pause and resume.';
  static override examples = ['<%= config.bin %> top --server http://127.0.0.1:8300', '<%= config.bin %> top --once --json'];
  static override flags = {
    ...connectionFlags,
    interval: Flags.integer({ description: 'refresh period in milliseconds', default: 1000, min: 200 }),
    once: Flags.boolean({ description: 'print one snapshot and exit (the default when stdout is not a terminal)' }),
  };

  async run(): Promise<TopSnapshot | undefined> {
    const { flags } = await this.parse(Top);
    const client = apiClientOf(flags);
    if (flags.once || this.jsonEnabled() || !process.stdout.isTTY || !process.stdin.isTTY) {
      const snapshot = await fetchSnapshot(client, null, { snapshotTables: true });
      this.log(formatSnapshot(snapshot, Date.now()));
      return snapshot;
    }
    const app = render(<TopApp client={client} intervalMs={flags.interval} />, { exitOnCtrlC: true });
    await app.waitUntilExit();
    return undefined;
  }
}
