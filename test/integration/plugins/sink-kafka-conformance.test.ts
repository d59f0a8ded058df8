import { before } from 'node:test';
import { decodeMessage, factory, readTopic, type CanonicalRow, type Protocol } from '../../../plugins/sink-kafka/src/index.js';
import { describeSinkConformance, type ConformanceTable, type TableState } from '../../../src/core/sink/testkit.js';
import { requireService, serviceAddress, uniqueName } from '../../helpers/services.js';

/**
 * The sink conformance suite against the real broker, once per protocol. readBack consumes the URI's topic
 * from the start, decodes every message with the plugin's decoder and replays the row changes in partition
 * order (the default `table` dispatcher keeps a table in one partition), which rebuilds the table's state.
 */
before(async () => {
  await requireService('kafka');
});

function replay(protocol: Protocol, table: ConformanceTable, messages: Awaited<ReturnType<typeof readTopic>>): TableState {
  const state: TableState = new Map();
  const { schema, table: name } = table.name;
  const values = (row: CanonicalRow): (string | null)[] => table.columns.map((c) => row[c.name] ?? null);
  const key = (row: CanonicalRow): string => table.columns.filter((c) => c.primaryKey).map((c) => row[c.name] ?? 'NULL').join('|');
  for (const m of messages) {
    for (const event of decodeMessage(protocol, m.key, m.value, (s, t) => (s === schema && t === name ? table.columns : undefined))) {
      if (event.kind !== 'row' || event.schema !== schema || event.table !== name) continue;
      if (event.before !== null) state.delete(key(event.before));
      if (event.after !== null) state.set(key(event.after), values(event.after));
    }
  }
  return state;
}

const protocols: { protocol: Protocol; params: string; label?: string }[] = [
  { protocol: 'canal-json', params: 'enable-tidb-extension=true' },
  { protocol: 'canal-json', params: 'client=kafkajs&compression=gzip', label: 'canal-json, client=kafkajs' },
  { protocol: 'open-protocol', params: 'max-batch-size=8' },
  { protocol: 'debezium', params: '' },
  { protocol: 'maxwell', params: '' },
];

for (const { protocol, params, label } of protocols) {
  describeSinkConformance(`kafka:${label ?? protocol}`, {
    factory,
    uri: () => new URL(`kafka://${serviceAddress('kafka').addr}/${uniqueName(`tm-conf-${protocol}`)}?protocol=${protocol}${params === '' ? '' : `&${params}`}`),
    readBack: async (table, uri) => replay(protocol, table, await readTopic([serviceAddress('kafka').addr], uri.pathname.slice(1))),
  });
}
