import type { KafkaConfig } from '../config.js';
import { KafkajsKafkaProducer } from './kafkajs.js';
import { PlatformaticKafkaProducer } from './platformatic.js';
import type { KafkaProducer } from './producer.js';

/** Opens the configured client's producer (client=platformatic, the default, or kafkajs) on this thread. */
export function openInThisThread(config: KafkaConfig): Promise<KafkaProducer> {
  return config.client === 'kafkajs' ? KafkajsKafkaProducer.open(config) : PlatformaticKafkaProducer.open(config);
}
