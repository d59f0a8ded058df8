import { after } from 'node:test';
import { canonical, describeSinkConformance, pkKey, type TableState } from 'tidemark/testkit';
import { blackholeRecording, clearBlackholeRecordings, factory } from '../src/index.js';

// The blackhole keeps no rows unless asked: each test gets its own recording (record=<name>), and readBack
// rebuilds a table's state from the rows its flushes acknowledged.
let next = 0;
const names: string[] = [];
after(() => {
  for (const name of names) clearBlackholeRecordings(name);
});

describeSinkConformance('blackhole', {
  factory,
  uri: () => {
    const name = `conformance-${process.pid}-${next++}`;
    names.push(name);
    return new URL(`blackhole://?record=${name}`);
  },
  readBack: (table, uri) => {
    const rows = blackholeRecording(uri.searchParams.get('record') ?? '')?.tables.get(`${table.name.schema}.${table.name.table}`);
    const state: TableState = new Map();
    for (const row of rows?.values() ?? []) {
      const values = table.columns.map((c) => row.get(c.name) ?? null);
      state.set(pkKey(table.columns, values), values.map(canonical));
    }
    return Promise.resolve(state);
  },
});
