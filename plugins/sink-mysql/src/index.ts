import type { Sink, SinkContext, SinkFactory } from 'tidemark/sink';
import { parseMySqlConfig, type MySqlSinkConfig } from './config.js';
import { MySqlSink } from './sink.js';

export { MySqlSink, MySqlSinkError, type MySqlSinkErrorCode } from './sink.js';
export { parseMySqlConfig, type MySqlSinkConfig } from './config.js';

/** `mysql://user:password@host:port/?worker-count=16&max-txn-row=256&safe-mode=false&…` (and `tidb://`). */
export const factory = {
  schemes: ['mysql', 'tidb'],
  parseConfig(uri: URL): MySqlSinkConfig {
    return parseMySqlConfig(uri);
  },
  create(_uri: URL, config: MySqlSinkConfig, ctx: SinkContext): Promise<Sink> {
    return MySqlSink.create(config, ctx);
  },
} satisfies SinkFactory<MySqlSinkConfig>;
