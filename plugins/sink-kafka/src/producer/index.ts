import type { KafkaConfig } from '../config.js';
import { openInThisThread } from './open.js';
import type { KafkaProducer } from './producer.js';
import { WorkerKafkaProducer } from './worker.js';

export { wrapClientError, type KafkaProducer, type ProducerMessage, type TopicSpec, type TopicInfo } from './producer.js';
export { PlatformaticKafkaProducer } from './platformatic.js';
export { KafkajsKafkaProducer } from './kafkajs.js';
export { WorkerKafkaProducer } from './worker.js';

/**
 * Opens the configured client's producer (client=platformatic, the default, or kafkajs), on the calling thread
 * (producer-thread=main, the default) or in a worker thread of its own (producer-thread=worker).
 */
export function openProducer(config: KafkaConfig): Promise<KafkaProducer> {
  return config.producerThread === 'worker' ? WorkerKafkaProducer.open(config) : openInThisThread(config);
}
