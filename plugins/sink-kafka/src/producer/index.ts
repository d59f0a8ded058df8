import type { KafkaConfig } from '../config.js';
import { KafkajsKafkaProducer } from './kafkajs.js';
import { PlatformaticKafkaProducer } from './platformatic.js';
import type { KafkaProducer } from './producer.js';

export { wrapClientError, type KafkaProducer, type ProducerMessage, type TopicSpec, type TopicInfo } from './producer.js';
export { PlatformaticKafkaProducer } from './platformatic.js';
export { KafkajsKafkaProducer } from './kafkajs.js';

/** Opens the configured client's producer (client=platformatic, the default, or kafkajs). */
export function openProducer(config: KafkaConfig): Promise<KafkaProducer> {
  return config.client === 'kafkajs' ? KafkajsKafkaProducer.open(config) : PlatformaticKafkaProducer.open(config);
}
