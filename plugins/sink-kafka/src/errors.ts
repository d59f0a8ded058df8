/**
 * Typed errors of the Kafka sink. Codes follow the core catalogue's names where one exists (ErrSinkURIInvalid,
 * ErrSinkFailed, ErrSinkRejected); `retryable` tells the processor whether the changefeed restarts from its
 * checkpoint (true) or fails at once (false). Third-party client errors are wrapped once, in producer/.
 */
export type KafkaSinkErrorCode =
  | 'ErrSinkURIInvalid'
  | 'ErrKafkaDispatcherInvalid'
  | 'ErrKafkaMessageTooLarge'
  | 'ErrKafkaUnreachable'
  | 'ErrKafkaSendFailed'
  | 'ErrKafkaAuthFailed'
  | 'ErrKafkaTLSError'
  | 'ErrKafkaTopicInvalid'
  | 'ErrKafkaSinkClosed';

const retryableByCode: Record<KafkaSinkErrorCode, boolean> = {
  ErrSinkURIInvalid: false,
  ErrKafkaDispatcherInvalid: false,
  ErrKafkaMessageTooLarge: false,
  ErrKafkaUnreachable: true,
  ErrKafkaSendFailed: true,
  ErrKafkaAuthFailed: false,
  ErrKafkaTLSError: false,
  ErrKafkaTopicInvalid: false,
  ErrKafkaSinkClosed: true,
};

export class KafkaSinkError extends Error {
  readonly code: KafkaSinkErrorCode;
  readonly retryable: boolean;
  readonly hint: string | undefined;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: KafkaSinkErrorCode, message: string, options: { cause?: unknown; hint?: string; details?: Record<string, unknown>; retryable?: boolean } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'KafkaSinkError';
    this.code = code;
    this.retryable = options.retryable ?? retryableByCode[code];
    this.hint = options.hint;
    this.details = options.details;
  }

  toJSON(): Record<string, unknown> {
    return { name: this.name, code: this.code, message: this.message, retryable: this.retryable, hint: this.hint, details: this.details };
  }
}
