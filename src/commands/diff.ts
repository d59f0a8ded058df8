import { Flags } from '@oclif/core';
import { BaseCommand } from '../cli/base-command.js';
import { diffTables, type DiffReport } from '../core/diff/table-diff.js';

export default class Diff extends BaseCommand {
  static override description = 'Compare tables of the upstream and the downstream chunk by chunk (checksums), and name the rows that differ. Exits 1 when they differ.';
  static override examples = [
    '<%= config.bin %> diff --upstream mysql://root@127.0.0.1:3307 --downstream mysql://root@127.0.0.1:3308 --tables "shop.*"',
  ];
  static override flags = {
    upstream: Flags.string({ description: 'upstream mysql:// URI (?ssl-mode=…&ssl-ca=…&ssl-cert=…&ssl-key=… for TLS)', required: true }),
    downstream: Flags.string({ description: 'downstream mysql:// URI, or the mysql sink URI (the same ssl-* parameters)', required: true }),
    tables: Flags.string({ description: 'table filter rules, comma-separated (db.*, !db.tmp*) [default: every non-system table]' }),
    'chunk-size': Flags.integer({ description: 'rows per checksum chunk', default: 10_000, min: 1 }),
  };

  async run(): Promise<DiffReport> {
    const { flags } = await this.parse(Diff);
    const report = await diffTables({
      upstream: flags.upstream,
      downstream: flags.downstream,
      chunkSize: flags['chunk-size'],
      ...(flags.tables === undefined ? {} : { tables: flags.tables.split(',').map((s) => s.trim()).filter(Boolean) }),
    });
    for (const t of report.tables) {
      const head = `${t.equal ? 'equal    ' : 'DIFFERENT'} ${t.table}  rows ${t.upstreamRows}/${t.downstreamRows}  chunks ${t.chunks - t.differentChunks}/${t.chunks} equal`;
      this.log(t.problem === undefined ? head : `${head}  (${t.problem})`);
      for (const d of t.differences) this.log(`    ${d.kind} ${JSON.stringify(d.key)}`);
    }
    this.log(report.equal ? `All ${report.tables.length} tables are equal.` : `${report.tables.filter((t) => !t.equal).length} of ${report.tables.length} tables differ.`);
    if (!report.equal) process.exitCode = 1;
    return report;
  }
}
