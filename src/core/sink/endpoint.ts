import { TidemarkError } from '../errors/index.js';
import { redactUri } from '../config/uri.js';
import type { Sink, SinkContext, SinkFactory } from './api.js';

/**
 * A changefeed's sink as core knows it: the plugin's factory with the URI and the plugin's config parsed once.
 * The owner (DDL, syncpoints, watermarks), the processors (rows) and `changefeed create` (the schema snapshot)
 * open their sink connections through it, so a plugin's failure reads the same whoever met it.
 */
export class SinkEndpoint {
  private constructor(
    readonly factory: SinkFactory<unknown>,
    readonly uri: URL,
    readonly config: unknown,
  ) {}

  /** The URI parsed by the plugin's `parseConfig`; its errors become ErrSinkURIInvalid naming the URI. */
  static of(factory: SinkFactory<unknown>, sinkUri: string): SinkEndpoint {
    let uri: URL;
    try {
      uri = new URL(sinkUri);
    } catch {
      throw new TidemarkError('ErrSinkURIInvalid', `invalid --sink-uri "${redactUri(sinkUri)}": not a URI (expected scheme://…, e.g. blackhole://)`);
    }
    try {
      return new SinkEndpoint(factory, uri, factory.parseConfig(uri));
    } catch (error) {
      if (error instanceof TidemarkError) throw error;
      throw new TidemarkError('ErrSinkURIInvalid', `invalid --sink-uri "${redactUri(sinkUri)}": ${(error as Error).message}`, { cause: error });
    }
  }

  /** `blackhole`, `mysql`, `kafka` …: the URI's scheme. */
  get scheme(): string {
    return this.uri.protocol.slice(0, -1);
  }

  /** The URI without its password, for messages. */
  get redacted(): string {
    return redactUri(this.uri.href);
  }

  /** A new connection of the sink; a plugin's plain error becomes a typed sink error naming the URI. */
  async open(ctx: SinkContext): Promise<Sink> {
    try {
      return await this.factory.create(this.uri, this.config, ctx);
    } catch (error) {
      throw sinkError(error, `cannot open the sink ${this.redacted}`);
    }
  }
}

/**
 * A sink call's failure as a typed error: a TidemarkError as it is, a plugin's plain error as ErrSinkFailed
 * (retryable) or, when the plugin marked it `retryable: false`, ErrSinkRejected.
 */
export function sinkError(error: unknown, what: string): TidemarkError {
  if (error instanceof TidemarkError) return error;
  const message = error instanceof Error ? error.message : String(error);
  const retryable = (error as { retryable?: unknown } | null)?.retryable !== false;
  return new TidemarkError(retryable ? 'ErrSinkFailed' : 'ErrSinkRejected', `${what}: ${message}`, { cause: error, retryable });
}
