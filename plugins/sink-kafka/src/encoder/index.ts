import type { Protocol } from '../config.js';
import { CanalJsonEncoder } from './canal-json.js';
import { DebeziumEncoder } from './debezium.js';
import { MaxwellEncoder } from './maxwell.js';
import { OpenProtocolEncoder } from './open-protocol.js';
import type { EncoderOptions, RowEncoder } from './types.js';

export type { EncodedEvent, EncoderOptions, RowEncoder } from './types.js';
export { CanalJsonEncoder } from './canal-json.js';
export { DebeziumEncoder } from './debezium.js';
export { MaxwellEncoder } from './maxwell.js';
export { OpenProtocolEncoder, packOpenProtocol, unpackOpenProtocol } from './open-protocol.js';

/** The encoder of a protocol. */
export function createEncoder(protocol: Protocol, options: EncoderOptions): RowEncoder {
  switch (protocol) {
    case 'canal-json':
      return new CanalJsonEncoder(options);
    case 'open-protocol':
      return new OpenProtocolEncoder(options);
    case 'debezium':
      return new DebeziumEncoder(options);
    case 'maxwell':
      return new MaxwellEncoder(options);
  }
}
