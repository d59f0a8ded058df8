import { Worker } from 'node:worker_threads';
import type { KafkaConfig } from '../config.js';
import { KafkaSinkError } from '../errors.js';
import { MAX_REQUESTS_IN_FLIGHT } from './batch-sender.js';
import type { KafkaProducer, ProducerMessage, TopicInfo, TopicSpec } from './producer.js';
import { fromThreadError, packMessages, type ThreadCall, type ThreadReply, type ThreadStart } from './thread-protocol.js';

interface Pending {
  readonly resolve: (result: TopicInfo | undefined) => void;
  readonly reject: (error: KafkaSinkError) => void;
}

/**
 * The worker's file: next to this one, or the built one when this runs from the TypeScript sources (the tests,
 * through tsx, whose loader Node 20 does not give to worker threads; integration tests run after the build).
 */
const THREAD_FILE = import.meta.url.endsWith('.ts') ? new URL('../../dist/producer/producer-thread.js', import.meta.url) : new URL('./producer-thread.js', import.meta.url);

/**
 * KafkaProducer whose client runs in a worker thread of its own (producer-thread=worker; the default is main):
 * the sink's thread encodes rows and packs each send's messages into one transferred buffer; building the record
 * batches, their checksums and the broker connections run on the worker (about 40 % of the sink's thread in a
 * drain, issue #16's profile). It pays only where a core is free: on the 2-core bench machine, shared with the
 * broker and MariaDB, it does not (BENCHMARKS.md). The same client and the same guarantees as on the sink's
 * thread; the worker is referenced only while a call is pending, and close() ends it.
 */
export class WorkerKafkaProducer implements KafkaProducer {
  readonly client: KafkaConfig['client'];
  readonly sendsInFlight: number;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: KafkaSinkError | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly worker: Worker,
    config: KafkaConfig,
  ) {
    this.client = config.client;
    // the thread runs the calls in the order they come, so the client's own bound holds
    this.sendsInFlight = config.client === 'kafkajs' ? 1 : MAX_REQUESTS_IN_FLIGHT;
  }

  /** Starts the worker and opens the producer in it; rejects with the producer's own error (e.g. an unreadable ca file). */
  static async open(config: KafkaConfig): Promise<WorkerKafkaProducer> {
    const start: ThreadStart = { config };
    const worker = new Worker(THREAD_FILE, { workerData: start, name: `kafka producer ${config.clientId}` });
    const producer = new WorkerKafkaProducer(worker, config);
    const opened = new Promise<void>((resolve, reject) => producer.pending.set(0, { resolve: () => resolve(), reject }));
    worker.on('message', (reply: ThreadReply) => producer.answer(reply));
    worker.on('error', (error) => producer.fail(new KafkaSinkError('ErrKafkaSendFailed', `the Kafka producer thread failed: ${error.message}`, { cause: error })));
    worker.on('exit', (code) => producer.fail(new KafkaSinkError(producer.closing === undefined ? 'ErrKafkaSendFailed' : 'ErrKafkaSinkClosed', `the Kafka producer thread exited (code ${code})`)));
    try {
      await opened;
    } catch (error) {
      await worker.terminate();
      throw error;
    }
    worker.unref();
    return producer;
  }

  ensureTopic(topic: string, spec: TopicSpec): Promise<TopicInfo> {
    return this.call({ op: 'ensureTopic', id: this.nextId++, topic, spec }) as Promise<TopicInfo>;
  }

  async send(messages: readonly ProducerMessage[]): Promise<void> {
    if (messages.length === 0) return;
    const { data, topics } = packMessages(messages);
    await this.call({ op: 'send', id: this.nextId++, topics, count: messages.length, data }, [data]);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.failure === undefined) {
        try {
          await this.call({ op: 'close', id: this.nextId++ }, [], true);
        } catch {
          // the thread failed already: terminate it
        }
      }
      this.failure ??= new KafkaSinkError('ErrKafkaSinkClosed', 'the Kafka producer is closed');
      await this.worker.terminate();
    })();
    return this.closing;
  }

  private call(message: ThreadCall, transfer: ArrayBuffer[] = [], closing = false): Promise<TopicInfo | undefined> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.closing !== undefined && !closing) return Promise.reject(new KafkaSinkError('ErrKafkaSinkClosed', 'the Kafka producer is closed'));
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref();
      this.pending.set(message.id, { resolve, reject });
      this.worker.postMessage(message, transfer);
    });
  }

  private answer(reply: ThreadReply): void {
    const waiting = this.pending.get(reply.id);
    if (waiting === undefined) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker.unref();
    if (reply.ok) waiting.resolve(reply.result);
    else waiting.reject(fromThreadError(reply.error));
  }

  /** The thread is gone: every pending call and every later one rejects with why. */
  private fail(error: KafkaSinkError): void {
    this.failure ??= error;
    for (const waiting of this.pending.values()) waiting.reject(this.failure);
    this.pending.clear();
  }
}
