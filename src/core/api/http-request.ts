import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** PEM text of the CA to trust and the client certificate to present (https only). */
export interface HttpTls {
  readonly ca?: string | undefined;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
}

export interface HttpCall {
  readonly method: string;
  readonly url: URL;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string;
  readonly signal: AbortSignal;
  readonly tls?: HttpTls | undefined;
}

export interface HttpAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
}

/**
 * One HTTP(S) request on its own connection (no agent: nothing stays open after it), with the CA and client
 * certificate `fetch` cannot take. Rejects with the socket's error (its `code`: ECONNREFUSED, CERT_HAS_EXPIRED…)
 * or, when `signal` aborts, with the signal's reason.
 */
export function requestText(call: HttpCall): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    if (call.signal.aborted) {
      reject(call.signal.reason as Error);
      return;
    }
    const secure = call.url.protocol === 'https:';
    const options = {
      method: call.method,
      headers: { ...(call.body === undefined ? {} : { 'content-length': String(Buffer.byteLength(call.body)) }), ...call.headers },
      agent: false as const,
      ...(secure ? { ca: call.tls?.ca, cert: call.tls?.cert, key: call.tls?.key, ALPNProtocols: ['http/1.1'] } : {}),
    };
    const req = (secure ? httpsRequest : httpRequest)(call.url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => {
        call.signal.removeEventListener('abort', onAbort);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', fail);
    });
    function fail(error: Error): void {
      call.signal.removeEventListener('abort', onAbort);
      reject(error);
    }
    function onAbort(): void {
      req.destroy();
      reject(call.signal.reason as Error);
    }
    call.signal.addEventListener('abort', onAbort, { once: true });
    req.on('error', fail);
    req.end(call.body);
  });
}
