/**
 * The producer's worker thread (producer-thread=worker): opens the configured client's producer and runs the
 * calls of the sink's thread on it, in the order they arrive (so a partition's messages keep the order of the
 * sends). Record batches are built, checksummed and written to the brokers here, off the thread that decodes
 * and encodes rows.
 */
import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { openInThisThread } from './open.js';
import type { KafkaProducer, TopicInfo } from './producer.js';
import { threadError, unpackMessages, type ThreadCall, type ThreadReply, type ThreadStart } from './thread-protocol.js';

async function serve(port: MessagePort, { config }: ThreadStart): Promise<void> {
  const reply = (message: ThreadReply): void => port.postMessage(message);
  let producer: KafkaProducer;
  try {
    producer = await openInThisThread(config);
  } catch (error) {
    reply({ id: 0, ok: false, error: threadError(error) });
    port.close(); // nothing else holds the thread: it ends after the answer
    return;
  }
  reply({ id: 0, ok: true });
  const answer = (id: number, work: Promise<TopicInfo | void>): void => {
    work.then(
      (result) => reply(result === undefined ? { id, ok: true } : { id, ok: true, result }),
      (error: unknown) => reply({ id, ok: false, error: threadError(error) }),
    );
  };
  port.on('message', (call: ThreadCall) => {
    switch (call.op) {
      case 'send':
        // called now, not after an await: the producer queues the messages in the order the calls came
        answer(call.id, (async () => producer.send(unpackMessages(call.data, call.topics, call.count)))());
        return;
      case 'ensureTopic':
        answer(call.id, producer.ensureTopic(call.topic, call.spec));
        return;
      case 'close':
        void producer.close().finally(() => {
          reply({ id: call.id, ok: true });
          port.close();
        });
        return;
    }
  });
}

if (parentPort === null) throw new Error('producer-thread.js runs as a worker thread of the Kafka sink');
void serve(parentPort, workerData as ThreadStart);
