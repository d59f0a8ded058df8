import zlib from 'node:zlib';
import { KafkaSinkError } from './errors.js';

/** The sink URI parameters, each key held once so messages quote it exactly (TiCDC's names). */
export const PARAM = {
  protocol: 'protocol',
  partitionNum: 'partition-num',
  replicationFactor: 'replication-factor',
  maxMessageBytes: 'max-message-bytes',
  compression: 'compression',
  requiredAcks: 'required-acks',
  kafkaVersion: 'kafka-version',
  autoCreateTopic: 'auto-create-topic',
  enableTidbExtension: 'enable-tidb-extension',
  includeSchemaChanges: 'include-schema-changes',
  tombstonesOnDelete: 'tombstones-on-delete',
  schemaChangeTopic: 'schema-change-topic',
  maxBatchSize: 'max-batch-size',
  client: 'client',
  producerThread: 'producer-thread',
  clientId: 'kafka-client-id',
  saslUser: 'sasl-user',
  saslPassword: 'sasl-password',
  saslMechanism: 'sasl-mechanism',
  enableTls: 'enable-tls',
  ca: 'ca',
  cert: 'cert',
  key: 'key',
  insecureSkipVerify: 'insecure-skip-verify',
  dialTimeout: 'dial-timeout',
  writeTimeout: 'write-timeout',
} as const;

export const ALLOWED_PARAMS: readonly string[] = Object.values(PARAM);
export const PROTOCOLS = ['canal-json', 'open-protocol', 'debezium', 'maxwell'] as const;
export type Protocol = (typeof PROTOCOLS)[number];
export const CLIENTS = ['platformatic', 'kafkajs'] as const;
export type ClientName = (typeof CLIENTS)[number];
export const PRODUCER_THREADS = ['worker', 'main'] as const;
export type ProducerThread = (typeof PRODUCER_THREADS)[number];
export type Compression = 'none' | 'gzip' | 'snappy' | 'lz4' | 'zstd';
export const SASL_MECHANISMS = ['plain', 'scram-sha-256', 'scram-sha-512'] as const;
export type SaslMechanism = (typeof SASL_MECHANISMS)[number];

/** Compression codecs each client supports on this Node.js (zstd needs zlib's zstd, Node ≥ 22.15). */
export function supportedCompressions(client: ClientName): readonly Compression[] {
  if (client === 'kafkajs') return ['none', 'gzip']; // snappy, lz4 and zstd need codec packages kafkajs does not ship
  const zstd = typeof (zlib as unknown as Record<string, unknown>)['zstdCompressSync'] === 'function';
  return zstd ? ['none', 'gzip', 'snappy', 'lz4', 'zstd'] : ['none', 'gzip', 'snappy', 'lz4'];
}

export interface KafkaBroker {
  readonly host: string;
  readonly port: number;
}

export interface KafkaConfig {
  readonly brokers: readonly KafkaBroker[];
  /** The default topic, the URI path. */
  readonly topic: string;
  /** Undefined when the URI has none: the changefeed's `[sink] protocol` is used, else create() refuses. */
  readonly protocol: Protocol | undefined;
  /** Partitions of auto-created topics; when set, an existing topic with fewer partitions is refused. */
  readonly partitionNum: number | undefined;
  readonly replicationFactor: number;
  readonly maxMessageBytes: number;
  readonly compression: Compression;
  readonly requiredAcks: -1 | 1;
  readonly kafkaVersion: string;
  readonly autoCreateTopic: boolean;
  readonly enableTidbExtension: boolean;
  /**
   * debezium: DDL as schema change events in the schema-change topic (named after the topic prefix, the
   * changefeed id, as Debezium's include.schema.changes=true writes them), never in data topics; false drops DDL.
   */
  readonly includeSchemaChanges: boolean;
  /** debezium: a tombstone (the key, a null value) after each delete, as Debezium's tombstones.on.delete=true. */
  readonly tombstonesOnDelete: boolean;
  /** debezium: the schema-change topic; undefined is Debezium's, the topic prefix (the changefeed id). */
  readonly schemaChangeTopic: string | undefined;
  /** Events per Kafka message for the batching protocol (open-protocol). */
  readonly maxBatchSize: number;
  /** The PROTOCOL_PARAMS the URI gives, checked against the protocol once it is known (`checkProtocolParams`). */
  readonly protocolParams: readonly string[];
  readonly client: ClientName;
  /**
   * Where the client builds and sends record batches: the thread that encodes the rows (`main`, the default), or a
   * worker thread of the sink's own (`worker`, for captures with a core to spare).
   */
  readonly producerThread: ProducerThread;
  readonly clientId: string;
  readonly sasl: { readonly mechanism: SaslMechanism; readonly username: string; readonly password: string } | undefined;
  readonly tls: { readonly ca: string | undefined; readonly cert: string | undefined; readonly key: string | undefined; readonly insecureSkipVerify: boolean } | undefined;
  readonly dialTimeoutMs: number;
  readonly writeTimeoutMs: number;
}

/**
 * Parameters that mean something to some protocols only; given with another protocol they are refused (at
 * `changefeed create`, once the protocol is known, the URI's or `[sink] protocol`) instead of being ignored.
 */
export const PROTOCOL_PARAMS: Readonly<Record<string, readonly Protocol[]>> = {
  [PARAM.enableTidbExtension]: ['canal-json'],
  [PARAM.includeSchemaChanges]: ['debezium'],
  [PARAM.tombstonesOnDelete]: ['debezium'],
  [PARAM.schemaChangeTopic]: ['debezium'],
  [PARAM.maxBatchSize]: ['open-protocol'],
};

export const DEFAULT_MAX_MESSAGE_BYTES = 10 * 1024 * 1024;
export const DEFAULT_PARTITION_NUM = 3;

function invalid(key: string, value: string, allowed: string): KafkaSinkError {
  return new KafkaSinkError('ErrSinkURIInvalid', `invalid ${key} "${value}" in kafka sink URI: ${allowed}`, { details: { key, value } });
}

function intParam(params: URLSearchParams, key: string, min: number, max: number): number | undefined {
  const raw = params.get(key);
  if (raw === null) return undefined;
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isInteger(n) || n < min || n > max) throw invalid(key, raw, `an integer from ${min} to ${max}`);
  return n;
}

function boolParam(params: URLSearchParams, key: string, fallback: boolean): boolean {
  const raw = params.get(key);
  if (raw === null) return fallback;
  if (raw === 'true') return true;
  if (raw === 'false') return false;
  throw invalid(key, raw, 'true or false');
}

function enumParam<T extends string>(params: URLSearchParams, key: string, allowed: readonly T[]): T | undefined {
  const raw = params.get(key);
  if (raw === null) return undefined;
  if (!(allowed as readonly string[]).includes(raw)) throw invalid(key, raw, `one of ${allowed.join(', ')}`);
  return raw as T;
}

function durationParam(params: URLSearchParams, key: string, fallbackMs: number): number {
  const raw = params.get(key);
  if (raw === null) return fallbackMs;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(raw);
  const ms = match === null ? NaN : Number(match[1]) * (match[2] === 'ms' ? 1 : match[2] === 's' ? 1000 : 60_000);
  if (!Number.isFinite(ms) || ms < 100 || ms > 600_000) throw invalid(key, raw, 'a duration from 100ms to 10m, such as 10s or 500ms');
  return Math.round(ms);
}

/** Refuses a parameter of the URI that `protocol` does not read, naming the protocols that do. */
export function checkProtocolParams(config: KafkaConfig, protocol: Protocol): void {
  for (const key of config.protocolParams) {
    const protocols = PROTOCOL_PARAMS[key] ?? [];
    if (!protocols.includes(protocol)) {
      throw new KafkaSinkError('ErrSinkURIInvalid', `kafka sink URI: ${key} applies to protocol ${protocols.join(' or ')} only, not ${protocol}; remove it or change the protocol`, { details: { key, protocol } });
    }
  }
}

/** TiCDC's topic name rule: Kafka's legal characters, at most 249 of them, not "." or "..". */
export function validTopicName(topic: string): boolean {
  return /^[A-Za-z0-9._-]{1,249}$/.test(topic) && topic !== '.' && topic !== '..';
}

/**
 * Parses `kafka://host:port[,host:port]/topic?protocol=…` into a frozen config. Pure: no I/O (TLS files are
 * read by create). Every bad value throws ErrSinkURIInvalid naming the key, the value and what is allowed.
 */
export function parseConfig(uri: URL): KafkaConfig {
  if (uri.protocol !== 'kafka:') throw new KafkaSinkError('ErrSinkURIInvalid', `kafka sink URI must start with kafka://, got "${uri.protocol}//"`);
  const params = uri.searchParams;
  for (const key of params.keys()) {
    if (!ALLOWED_PARAMS.includes(key)) {
      throw new KafkaSinkError('ErrSinkURIInvalid', `unknown parameter "${key}" in kafka sink URI; allowed: ${ALLOWED_PARAMS.join(', ')}`, { details: { key } });
    }
    if (params.getAll(key).length > 1) throw new KafkaSinkError('ErrSinkURIInvalid', `parameter "${key}" given more than once in kafka sink URI`, { details: { key } });
  }
  const brokers = parseBrokers(uri);
  let topic: string;
  try {
    topic = decodeURIComponent(uri.pathname.replace(/^\//, ''));
  } catch {
    throw new KafkaSinkError('ErrSinkURIInvalid', `invalid topic "${uri.pathname}" in kafka sink URI: not valid percent-encoding`);
  }
  if (!validTopicName(topic)) {
    throw new KafkaSinkError('ErrSinkURIInvalid', `invalid topic "${topic}" in kafka sink URI path: 1 to 249 of A-Z a-z 0-9 . _ - (kafka://host:port/topic)`, { details: { key: 'topic', value: topic } });
  }
  const client = enumParam(params, PARAM.client, CLIENTS) ?? 'platformatic';
  const compressions = supportedCompressions(client);
  const compressionRaw = params.get(PARAM.compression) ?? 'none';
  if (!(compressions as readonly string[]).includes(compressionRaw)) {
    throw invalid(PARAM.compression, compressionRaw, `one of ${compressions.join(', ')} (what the ${client} client supports here)`);
  }
  const acksRaw = params.get(PARAM.requiredAcks) ?? '-1';
  if (acksRaw !== '-1' && acksRaw !== '1') {
    throw invalid(PARAM.requiredAcks, acksRaw, '-1 (all in-sync replicas, the default) or 1 (the leader); 0 is refused because flush could not know what the broker stored');
  }
  const kafkaVersion = params.get(PARAM.kafkaVersion) ?? '2.4.0';
  if (!/^\d+\.\d+(\.\d+){0,2}$/.test(kafkaVersion)) throw invalid(PARAM.kafkaVersion, kafkaVersion, 'a version such as 2.4.0 or 3.9.1');
  const clientId = params.get(PARAM.clientId) ?? 'tidemark';
  if (!/^[A-Za-z0-9._-]{1,128}$/.test(clientId)) throw invalid(PARAM.clientId, clientId, '1 to 128 of A-Z a-z 0-9 . _ -');

  const saslUser = params.get(PARAM.saslUser);
  const saslPassword = params.get(PARAM.saslPassword);
  const saslMechanism = enumParam(params, PARAM.saslMechanism, SASL_MECHANISMS);
  if ((saslUser === null) !== (saslPassword === null)) {
    throw new KafkaSinkError('ErrSinkURIInvalid', `kafka sink URI: ${PARAM.saslUser} and ${PARAM.saslPassword} go together; got only ${saslUser === null ? PARAM.saslPassword : PARAM.saslUser}`);
  }
  if (saslMechanism !== undefined && saslUser === null) {
    throw new KafkaSinkError('ErrSinkURIInvalid', `kafka sink URI: ${PARAM.saslMechanism}=${saslMechanism} needs ${PARAM.saslUser} and ${PARAM.saslPassword}`);
  }
  const sasl = saslUser !== null && saslPassword !== null ? Object.freeze({ mechanism: saslMechanism ?? 'plain', username: saslUser, password: saslPassword }) : undefined;

  const ca = params.get(PARAM.ca) ?? undefined;
  const cert = params.get(PARAM.cert) ?? undefined;
  const key = params.get(PARAM.key) ?? undefined;
  if ((cert === undefined) !== (key === undefined)) {
    throw new KafkaSinkError('ErrSinkURIInvalid', `kafka sink URI: ${PARAM.cert} and ${PARAM.key} go together (a client certificate and its key); got only ${cert === undefined ? PARAM.key : PARAM.cert}`);
  }
  const insecureSkipVerify = boolParam(params, PARAM.insecureSkipVerify, false);
  const enableTls = boolParam(params, PARAM.enableTls, ca !== undefined || cert !== undefined);
  if (!enableTls && (ca !== undefined || cert !== undefined || insecureSkipVerify)) {
    throw new KafkaSinkError('ErrSinkURIInvalid', `kafka sink URI: ${PARAM.ca}, ${PARAM.cert}, ${PARAM.key} and ${PARAM.insecureSkipVerify} need ${PARAM.enableTls}=true`);
  }
  const tls = enableTls ? Object.freeze({ ca, cert, key, insecureSkipVerify }) : undefined;

  const schemaChangeTopic = params.get(PARAM.schemaChangeTopic) ?? undefined;
  if (schemaChangeTopic !== undefined && !validTopicName(schemaChangeTopic)) {
    throw invalid(PARAM.schemaChangeTopic, schemaChangeTopic, 'a topic name: 1 to 249 of A-Z a-z 0-9 . _ -');
  }
  const maxBatchSize = intParam(params, PARAM.maxBatchSize, 1, 4096) ?? 16;
  return Object.freeze({
    brokers,
    topic,
    protocol: enumParam(params, PARAM.protocol, PROTOCOLS),
    partitionNum: intParam(params, PARAM.partitionNum, 1, 10_000),
    replicationFactor: intParam(params, PARAM.replicationFactor, 1, 128) ?? 1,
    maxMessageBytes: intParam(params, PARAM.maxMessageBytes, 1024, 1024 * 1024 * 1024) ?? DEFAULT_MAX_MESSAGE_BYTES,
    compression: compressionRaw as Compression,
    requiredAcks: acksRaw === '1' ? 1 : -1,
    kafkaVersion,
    autoCreateTopic: boolParam(params, PARAM.autoCreateTopic, true),
    enableTidbExtension: boolParam(params, PARAM.enableTidbExtension, false),
    includeSchemaChanges: boolParam(params, PARAM.includeSchemaChanges, true),
    tombstonesOnDelete: boolParam(params, PARAM.tombstonesOnDelete, true),
    schemaChangeTopic,
    maxBatchSize,
    protocolParams: Object.freeze(Object.keys(PROTOCOL_PARAMS).filter((k) => params.has(k))),
    client,
    producerThread: enumParam(params, PARAM.producerThread, PRODUCER_THREADS) ?? 'main',
    clientId,
    sasl,
    tls,
    dialTimeoutMs: durationParam(params, PARAM.dialTimeout, 10_000),
    writeTimeoutMs: durationParam(params, PARAM.writeTimeout, 10_000),
  });
}

function parseBrokers(uri: URL): KafkaBroker[] {
  // WHATWG URL refuses "h1:9092,h2:9092" for any scheme, so a list is written "h1,h2:9092" (one port for all),
  // or with per-broker ports percent-encoded ("h1%3A9093,h2:9092"); an entry without a port takes the URI's.
  let hostnames: string;
  try {
    hostnames = decodeURIComponent(uri.hostname);
  } catch {
    throw new KafkaSinkError('ErrSinkURIInvalid', `invalid broker list "${uri.hostname}" in kafka sink URI: not valid percent-encoding`);
  }
  if (hostnames === '') throw new KafkaSinkError('ErrSinkURIInvalid', 'kafka sink URI has no broker: kafka://host[,host]:port/topic');
  const defaultPort = uri.port === '' ? '9092' : uri.port;
  const brokers: KafkaBroker[] = [];
  for (const item of hostnames.split(',')) {
    const bracketed = /^\[([0-9a-fA-F:.]+)\](?::(\d+))?$/.exec(item);
    const colon = item.lastIndexOf(':');
    const host = bracketed !== null ? bracketed[1] : colon < 0 ? item : item.slice(0, colon);
    const portText = bracketed !== null ? (bracketed[2] ?? defaultPort) : colon < 0 ? defaultPort : item.slice(colon + 1);
    const port = Number(portText);
    if (host === '' || !/^[A-Za-z0-9.:-]+$/.test(host) || !/^\d+$/.test(portText) || port < 1 || port > 65535) {
      throw new KafkaSinkError('ErrSinkURIInvalid', `invalid broker "${item}" in kafka sink URI: a host name or address with a port from 1 to 65535`, { details: { key: 'broker', value: item } });
    }
    brokers.push(Object.freeze({ host, port }));
  }
  return brokers;
}
