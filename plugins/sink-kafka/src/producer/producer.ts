import { readFile } from 'node:fs/promises';
import type { ConnectionOptions } from 'node:tls';
import type { ClientName, KafkaConfig } from '../config.js';
import { KafkaSinkError } from '../errors.js';

/** One message to one partition of one topic (the sink chooses partitions itself). */
export interface ProducerMessage {
  readonly topic: string;
  readonly partition: number;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
}

export interface TopicSpec {
  /** Create the topic when it does not exist (auto-create-topic). */
  readonly create: boolean;
  readonly partitions: number;
  readonly replicationFactor: number;
  /** The topic's max.message.bytes when the sink creates it. */
  readonly maxMessageBytes: number;
}

/** What the sink needs to know of a topic. */
export interface TopicInfo {
  readonly partitions: number;
  /** The topic's max.message.bytes, when the broker tells it. */
  readonly maxMessageBytes: number | undefined;
}

/**
 * The small producer interface the sink writes through; two implementations: @platformatic/kafka (the default,
 * see BENCHMARKS.md) and kafkajs. Both are idempotent producers with acks as configured, so a partition's
 * messages are stored once and in the order sent, even across the client's own retries.
 */
export interface KafkaProducer {
  readonly client: ClientName;
  /** How many sends may be outstanding at once (1: the sink waits for each acknowledgement before the next send). */
  readonly sendsInFlight: number;
  /** The topic's partition count and message size limit, after creating it if asked and it does not exist. Rejects with KafkaSinkError. */
  ensureTopic(topic: string, spec: TopicSpec): Promise<TopicInfo>;
  /**
   * Sends messages and resolves once the broker acknowledged all of them (acks=-1: every in-sync replica).
   * Messages of one partition are stored in the order given; calls may overlap, and a later call's messages
   * follow an earlier call's on each partition. Rejects with a KafkaSinkError (retryable unless the broker
   * refuses the data itself).
   */
  send(messages: readonly ProducerMessage[]): Promise<void>;
  /** Idempotent; closes every connection and timer. */
  close(): Promise<void>;
}

/** The TLS options of the config, with the certificate files read (create time, not parseConfig). */
export async function tlsOptions(config: KafkaConfig): Promise<ConnectionOptions | undefined> {
  if (config.tls === undefined) return undefined;
  const read = async (path: string | undefined, what: string): Promise<Buffer | undefined> => {
    if (path === undefined) return undefined;
    try {
      return await readFile(path);
    } catch (error) {
      throw new KafkaSinkError('ErrSinkURIInvalid', `cannot read the kafka sink's ${what} file "${path}": ${(error as Error).message}`, { cause: error });
    }
  };
  const [ca, cert, key] = await Promise.all([read(config.tls.ca, 'ca'), read(config.tls.cert, 'cert'), read(config.tls.key, 'key')]);
  return { ...(ca === undefined ? {} : { ca }), ...(cert === undefined ? {} : { cert }), ...(key === undefined ? {} : { key }), rejectUnauthorized: !config.tls.insecureSkipVerify };
}

/** Strings found in an error, its causes and aggregated errors (client errors nest). */
function errorFacts(error: unknown, depth = 0): string[] {
  if (depth > 5 || typeof error !== 'object' || error === null) return [];
  const e = error as Record<string, unknown>;
  const facts = ['code', 'apiId', 'type', 'name', 'message'].map((k) => e[k]).filter((v): v is string => typeof v === 'string');
  if (Array.isArray(e['errors'])) for (const inner of e['errors']) facts.push(...errorFacts(inner, depth + 1));
  if (e['cause'] !== undefined) facts.push(...errorFacts(e['cause'], depth + 1));
  return facts;
}

/** Whether a client error (or one it wraps) carries `fact` in its code, apiId, name or message. */
export function hasErrorFact(error: unknown, fact: string): boolean {
  return errorFacts(error).some((f) => f.includes(fact));
}

const NETWORK_FACTS = ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EHOSTUNREACH', 'ENOTFOUND', 'PLT_KFK_NETWORK', 'PLT_KFK_TIMEOUT', 'KafkaJSConnectionError', 'KafkaJSRequestTimeoutError', 'KafkaJSConnectionClosedError', 'KafkaJSBrokerNotFound'];

/** What node:tls says when a certificate does not verify (codes and messages). */
const TLS_FACTS = [/^(CERT_|UNABLE_TO_(VERIFY|GET)|SELF_SIGNED|DEPTH_ZERO|ERR_TLS_CERT)/, /unable to verify|self[- ]signed certificate|certificate has expired|Hostname\/IP does not match/i];

/**
 * The TLS alerts a broker sends when it requires a client certificate and gets none, or one it does not trust
 * (node:tls codes ERR_SSL_…_ALERT_…: bad_certificate, certificate_required, unknown_ca, certificate_unknown,
 * unsupported_certificate, certificate_revoked/expired).
 */
const CLIENT_CERTIFICATE_ALERTS = /^ERR_SSL_(SSLV3|TLSV1|TLSV13)_ALERT_(BAD_CERTIFICATE|CERTIFICATE_REQUIRED|UNKNOWN_CA|CERTIFICATE_UNKNOWN|UNSUPPORTED_CERTIFICATE|CERTIFICATE_REVOKED|CERTIFICATE_EXPIRED)$/;

/** Wraps a client error once, at the boundary, into a typed KafkaSinkError. */
export function wrapClientError(error: unknown, what: string, brokers: string): KafkaSinkError {
  if (error instanceof KafkaSinkError) return error;
  const facts = errorFacts(error);
  const detail = facts.find((f) => f.length > 12) ?? facts[0] ?? String(error);
  if (facts.some((f) => f === 'MESSAGE_TOO_LARGE' || f === 'RECORD_LIST_TOO_LARGE' || f.includes('MESSAGE_TOO_LARGE'))) {
    return new KafkaSinkError('ErrKafkaMessageTooLarge', `${what}: the broker refused a message as too large (${detail}); raise the topic's max.message.bytes or lower max-message-bytes`, { cause: error });
  }
  // the specific causes first: a client reports them inside "cannot connect to any broker"
  // (a refused client certificate first of all: the SASL handshake that follows fails too, as "authentication")
  const refused = facts.find((f) => CLIENT_CERTIFICATE_ALERTS.test(f));
  if (refused !== undefined) {
    return new KafkaSinkError('ErrKafkaTLSError', `${what}: the broker at ${brokers} refused our TLS client certificate (${refused}); it asks for one signed by a CA it trusts: set cert and key to such a certificate and its key`, { cause: error });
  }
  const authentication = facts.find((f) => f === 'SASL_AUTHENTICATION_FAILED' || f === 'PLT_KFK_AUTHENTICATION' || f === 'KafkaJSSASLAuthenticationError' || /SASL .*authentication failed/i.test(f));
  if (authentication !== undefined) {
    const said = facts.find((f) => /authentication failed/i.test(f)) ?? authentication;
    return new KafkaSinkError('ErrKafkaAuthFailed', `${what}: the broker at ${brokers} refused the SASL login (${said}); check sasl-user, sasl-password and sasl-mechanism`, { cause: error });
  }
  const certificate = facts.find((f) => TLS_FACTS.some((t) => t.test(f)));
  if (certificate !== undefined) {
    return new KafkaSinkError('ErrKafkaTLSError', `${what}: the TLS certificate of the broker at ${brokers} failed verification (${certificate}); check ca (the CA that signed the broker's certificate) and the broker's host name`, { cause: error });
  }
  if (facts.some((f) => f.includes('TOPIC_AUTHORIZATION_FAILED') || f.includes('CLUSTER_AUTHORIZATION_FAILED'))) {
    return new KafkaSinkError('ErrKafkaSendFailed', `${what}: not authorized by the broker at ${brokers} (${detail})`, { cause: error, retryable: false });
  }
  if (facts.some((f) => NETWORK_FACTS.some((n) => f.includes(n)))) {
    const said = facts.find((f) => /connection|closed|refused|timed? ?out/i.test(f) && f.length > 12) ?? detail;
    return new KafkaSinkError('ErrKafkaUnreachable', `${what}: Kafka broker ${brokers} unreachable (${said})`, {
      cause: error,
      hint: 'check that the broker runs, that the sink URI names it, and that enable-tls matches its listener (a TLS listener closes a plaintext connection); the changefeed retries from its checkpoint',
    });
  }
  return new KafkaSinkError('ErrKafkaSendFailed', `${what} failed on ${brokers}: ${detail}`, { cause: error });
}
