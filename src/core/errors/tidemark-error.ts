import { behaviourOf, type ErrorCode } from './codes.js';

export interface TidemarkErrorOptions {
  /** What the user can do about it, shown under the message. */
  readonly hint?: string;
  /** Structured facts (the bad value, the allowed values, an address) for `--json` and the API. */
  readonly details?: Readonly<Record<string, unknown>>;
  readonly cause?: unknown;
  /** Overrides the catalogue, for the rare code whose retryability depends on the case. */
  readonly retryable?: boolean;
}

/** The JSON form, as stored in etcd, answered by the HTTP API and printed by `--json`. */
export interface TidemarkErrorJSON {
  readonly code: ErrorCode;
  readonly message: string;
  readonly retryable: boolean;
  readonly hint?: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

/**
 * Every error Tidemark raises on purpose. The code decides retryability, HTTP status and exit code
 * (see `codes.ts`); the message names the bad value and what is allowed.
 */
export class TidemarkError extends Error {
  override readonly name = 'TidemarkError';
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly hint: string | undefined;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, options: TidemarkErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.retryable = options.retryable ?? behaviourOf(code).retryable;
    this.hint = options.hint;
    this.details = options.details;
  }

  get httpStatus(): number {
    return behaviourOf(this.code).httpStatus;
  }

  get exitCode(): number {
    return behaviourOf(this.code).exitCode;
  }

  toJSON(): TidemarkErrorJSON {
    return {
      code: this.code,
      message: this.message,
      retryable: this.retryable,
      ...(this.hint === undefined ? {} : { hint: this.hint }),
      ...(this.details === undefined ? {} : { details: this.details }),
    };
  }

  static fromJSON(json: TidemarkErrorJSON): TidemarkError {
    return new TidemarkError(json.code, json.message, {
      retryable: json.retryable,
      ...(json.hint === undefined ? {} : { hint: json.hint }),
      ...(json.details === undefined ? {} : { details: json.details }),
    });
  }
}

/** A broken invariant (checkpoint going backwards, a patch on a missing key): never retried. */
export class BugIndicatingError extends TidemarkError {
  constructor(message: string, details?: Readonly<Record<string, unknown>>) {
    super('ErrBugIndicating', `bug: ${message}`, details === undefined ? {} : { details });
  }
}

/** True for the error an aborted operation rejects with; such errors are never logged as failures. */
export function isAbortError(error: unknown): boolean {
  if (error instanceof TidemarkError) return error.code === 'ErrAborted';
  return error instanceof Error && (error.name === 'AbortError' || (error as { code?: unknown }).code === 'ABORT_ERR');
}
