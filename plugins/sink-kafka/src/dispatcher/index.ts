import type { PartitionDispatcherFactory, RowChangedEvent, TableName } from 'tidemark/sink';
import { compileFilter, matchesFilters, type DispatchRule } from './rules.js';
import { createPartitionDispatcher, type PartitionDispatcher } from './partition.js';
import { TopicExpression } from './topic.js';

export { parseDispatchRules, validTopicExpression, compileFilter, matchesFilters, PARTITION_DISPATCHERS, type DispatchRule, type PartitionDispatcherName } from './rules.js';
export {
  createPartitionDispatcher,
  PluginPartitionDispatcher,
  TablePartitionDispatcher,
  TsPartitionDispatcher,
  IndexValuePartitionDispatcher,
  ColumnsPartitionDispatcher,
  type PartitionDispatcher,
} from './partition.js';
export { TopicExpression } from './topic.js';

interface Route {
  readonly topic: string;
  readonly partition: PartitionDispatcher;
}

/**
 * Routes tables to topics and rows to partitions from the dispatcher rules: the first rule whose matcher takes
 * the table gives its topic expression and partition dispatcher; a rule without one leaves that part to the
 * defaults (the URI's topic, the `table` dispatcher). Routes are cached per table. Pure.
 */
export class DispatchRouter {
  private readonly compiled: { rule: DispatchRule; filters: ReturnType<typeof compileFilter>[]; partition: PartitionDispatcher | undefined }[];
  private readonly defaultPartition = createPartitionDispatcher(undefined);
  private readonly routes = new Map<string, Route>();

  constructor(
    rules: readonly DispatchRule[],
    readonly defaultTopic: string,
    plugins?: ReadonlyMap<string, PartitionDispatcherFactory>,
  ) {
    this.compiled = rules.map((rule, i) => ({
      rule,
      filters: rule.matcher.map((m) => compileFilter(m, i)),
      partition: rule.partition === undefined ? undefined : createPartitionDispatcher(rule.partition, rule.columns, plugins),
    }));
  }

  route(schema: string, table: string): Route {
    const cacheKey = `${schema}\u0000${table}`;
    const hit = this.routes.get(cacheKey);
    if (hit !== undefined) return hit;
    let topic: string | undefined;
    let partition: PartitionDispatcher | undefined;
    for (const c of this.compiled) {
      if (!matchesFilters(c.filters, schema, table)) continue;
      if (topic === undefined && c.rule.topic !== undefined) topic = new TopicExpression(c.rule.topic).topic(schema, table);
      if (partition === undefined && c.partition !== undefined) partition = c.partition;
      break;
    }
    const route = { topic: topic ?? this.defaultTopic, partition: partition ?? this.defaultPartition };
    this.routes.set(cacheKey, route);
    return route;
  }

  topicOf(table: Pick<TableName, 'schema' | 'table'>): string {
    return this.route(table.schema, table.table).topic;
  }

  partitionOf(row: RowChangedEvent, partitions: number): number {
    return this.route(row.table.schema, row.table.table).partition.dispatch(row, partitions);
  }
}
