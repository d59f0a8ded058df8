import { connect } from 'node:net';
import { before } from 'node:test';
import { describeSinkConformance, type ConformanceTable, type TableState } from 'tidemark/testkit';
import { decodeMessage, factory, readTopic, type CanonicalRow, type Protocol } from '../src/index.js';

/**
 * The sink conformance suite against a real Kafka broker (the project's kafka service unless TIDEMARK_KAFKA_ADDR
 * names another), once per protocol. readBack consumes the URI's topic from the start, decodes every message with
 * the plugin's decoder and replays the row changes in partition order (the default `table` dispatcher keeps a
 * table in one partition), which rebuilds the table's state.
 */
const broker = process.env['TIDEMARK_KAFKA_ADDR'] ?? '127.0.0.1:9092';
let next = 0;
const topicName = (protocol: string): string => `tm-conf-${protocol}-${process.pid}-${Date.now().toString(36)}-${next++}`;

before(async () => {
  const [host, port] = [broker.slice(0, broker.lastIndexOf(':')), Number(broker.slice(broker.lastIndexOf(':') + 1))];
  await new Promise<void>((resolve, reject) => {
    const socket = connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', (error) => reject(new Error(`the kafka sink's conformance suite needs a Kafka broker at ${broker} (TIDEMARK_KAFKA_ADDR; \`bash scripts/services.sh up kafka\` starts one): ${error.message}`)));
  });
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
    uri: () => new URL(`kafka://${broker}/${topicName(protocol)}?protocol=${protocol}${params === '' ? '' : `&${params}`}`),
    readBack: async (table, uri) => replay(protocol, table, await readTopic([broker], uri.pathname.slice(1))),
  });
}
