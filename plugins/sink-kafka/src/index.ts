import type { Sink, SinkContext, SinkFactory } from 'tidemark/sink';
import { checkProtocolParams, parseConfig, PROTOCOLS, type KafkaConfig, type Protocol } from './config.js';
import { parseDispatchRules } from './dispatcher/index.js';
import { KafkaSinkError } from './errors.js';
import { openProducer } from './producer/index.js';
import { KafkaSink } from './sink.js';

export { parseConfig, checkProtocolParams, supportedCompressions, ALLOWED_PARAMS, PARAM, PROTOCOLS, PROTOCOL_PARAMS, type KafkaConfig, type Protocol, type Compression, type ClientName } from './config.js';
export { KafkaSinkError, type KafkaSinkErrorCode } from './errors.js';
export { KafkaSink, type KafkaSinkOptions, type KafkaSinkStats } from './sink.js';
export { DispatchRouter, parseDispatchRules, createPartitionDispatcher, TopicExpression, type DispatchRule, type PartitionDispatcher } from './dispatcher/index.js';
export { createEncoder, packOpenProtocol, unpackOpenProtocol, type RowEncoder, type EncodedEvent } from './encoder/index.js';
export { decodeMessage, parseJsonExact, type DecodedEvent, type DecodedSnapshot, type CanonicalRow, type ColumnsOf } from './decoder.js';
export { openProducer, type KafkaProducer, type ProducerMessage } from './producer/index.js';

/**
 * The protocol: the URI's, else the changefeed's `[sink] protocol`, else an error listing the allowed ones; the
 * URI's protocol-specific parameters must be the protocol's.
 */
export function resolveProtocol(config: KafkaConfig, sinkConfig: SinkContext['sinkConfig']): Protocol {
  const protocol = protocolOf(config, sinkConfig);
  checkProtocolParams(config, protocol);
  return protocol;
}

function protocolOf(config: KafkaConfig, sinkConfig: SinkContext['sinkConfig']): Protocol {
  if (config.protocol !== undefined) return config.protocol;
  const fromToml = sinkConfig?.['protocol'];
  if (typeof fromToml === 'string' && (PROTOCOLS as readonly string[]).includes(fromToml)) return fromToml as Protocol;
  if (fromToml !== undefined) throw new KafkaSinkError('ErrSinkURIInvalid', `invalid protocol ${JSON.stringify(fromToml)} in [sink] of the changefeed config: one of ${PROTOCOLS.join(', ')}`);
  throw new KafkaSinkError('ErrSinkURIInvalid', `the kafka sink needs a protocol: add protocol=<${PROTOCOLS.join('|')}> to the sink URI or protocol to [sink]`);
}

export const factory = {
  schemes: ['kafka'],
  parseConfig,
  /** The changefeed's `[sink]` keys this sink owns (TiCDC's): the protocol and the dispatcher rules. */
  sinkConfigKeys: ['protocol', 'dispatchers'],
  /** The protocol and the `[sink] dispatchers` rules, checked at `changefeed create` (pure). */
  validateSinkConfig(config: KafkaConfig, sinkConfig: Readonly<Record<string, unknown>>, dispatchers: readonly string[]): void {
    resolveProtocol(config, sinkConfig);
    parseDispatchRules(sinkConfig['dispatchers'], dispatchers);
  },
  /**
   * Validates the protocol and the `[sink] dispatchers` rules (ctx.sinkConfig), then opens the producer; the
   * broker is first contacted when a topic is first used (writeRows, writeDDL). Honours ctx.signal.
   */
  async create(_uri: URL, config: KafkaConfig, ctx: SinkContext): Promise<Sink> {
    ctx.signal.throwIfAborted();
    const protocol = resolveProtocol(config, ctx.sinkConfig);
    const rules = parseDispatchRules(ctx.sinkConfig?.['dispatchers'], [...(ctx.dispatchers?.keys() ?? [])]);
    const producer = await openProducer(config);
    if (ctx.signal.aborted) {
      await producer.close();
      ctx.signal.throwIfAborted();
    }
    ctx.logger.info('kafka sink created', { protocol, client: config.client, topic: config.topic, brokers: config.brokers.map((b) => `${b.host}:${b.port}`).join(',') });
    return new KafkaSink({ config, protocol, rules, producer, context: ctx });
  },
} satisfies SinkFactory<KafkaConfig>;
export { readTopic, type TopicMessage } from './read-topic.js';
