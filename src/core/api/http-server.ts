import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { TidemarkError } from '../errors/index.js';
import type { Logger } from '../logger/logger.js';

export type Handler = (req: IncomingMessage, params: Readonly<Record<string, string>>, body: unknown) => Promise<ApiResult>;

export interface ApiResult {
  readonly status?: number;
  /** JSON body; a string is sent as text/plain (Prometheus). */
  readonly body: unknown;
  readonly contentType?: string;
}

interface Route {
  readonly method: string;
  readonly pattern: RegExp;
  readonly names: readonly string[];
  readonly label: string;
  readonly handler: Handler;
}

/**
 * A small JSON HTTP server: routes like `/api/v2/captures/:id/drain`, JSON bodies, and every error as
 * `{error_code, error_msg}` with the status of its code (TiCDC's OpenAPI shape).
 */
export class HttpApi {
  private readonly routes: Route[] = [];
  /** The HTTP/1.1 server; a PortMux hands it connections. */
  readonly server: HttpServer;
  onRequest: ((route: string, status: number) => void) | undefined;
  /**
   * Runs after the route is matched and before the body is read or the handler runs: throws (ErrUnauthorized,
   * ErrTLSClientCertificate) to refuse the request, which then changes nothing. `route` is the route's pattern.
   */
  authorize: ((req: IncomingMessage, method: string, route: string) => Promise<void>) | undefined;

  constructor(private readonly logger: Logger) {
    this.server = createServer((req, res) => void this.handle(req, res));
    this.server.keepAliveTimeout = 5000;
  }

  route(method: string, path: string, handler: Handler): this {
    const names: string[] = [];
    const pattern = new RegExp(
      '^' + path.replace(/:([a-zA-Z_]+)/g, (_, name: string) => {
        names.push(name);
        return '([^/]+)';
      }) + '/?$',
    );
    this.routes.push({ method, pattern, names, label: path, handler });
    return this;
  }

  /** Ends every connection the mux handed over (the mux owns the listening socket). */
  close(): Promise<void> {
    this.server.closeAllConnections();
    return Promise.resolve();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://localhost');
    let label = 'unmatched';
    let result: ApiResult;
    try {
      const matched = this.match(req.method ?? 'GET', url.pathname);
      label = matched.route.label;
      await this.authorize?.(req, req.method ?? 'GET', matched.route.label);
      const body = req.method === 'GET' || req.method === 'HEAD' ? undefined : await readJson(req);
      result = await matched.route.handler(req, matched.params, body);
    } catch (error) {
      result = errorResult(error);
      if (result.status === undefined || result.status >= 500) this.logger.warn('HTTP API request failed', { path: url.pathname, error });
    }
    const status = result.status ?? 200;
    const text = typeof result.body === 'string' ? result.body : JSON.stringify(result.body, bigintReplacer);
    res.writeHead(status, {
      'content-type': result.contentType ?? (typeof result.body === 'string' ? 'text/plain; charset=utf-8' : 'application/json'),
      ...(status === 401 ? { 'www-authenticate': 'Basic realm="tidemark", charset="UTF-8"' } : {}),
    });
    res.end(text);
    this.onRequest?.(label, status);
  }

  private match(method: string, path: string): { route: Route; params: Record<string, string> } {
    let pathMatched = false;
    for (const route of this.routes) {
      const m = route.pattern.exec(path);
      if (m === null) continue;
      pathMatched = true;
      if (route.method !== method) continue;
      const params: Record<string, string> = {};
      route.names.forEach((name, i) => {
        try {
          params[name] = decodeURIComponent(m[i + 1]);
        } catch {
          throw new TidemarkError('ErrInvalidArgument', `the ${name} "${m[i + 1].slice(0, 100)}" in ${path.slice(0, 200)} is not valid percent-encoding`);
        }
      });
      return { route, params };
    }
    if (pathMatched) throw new TidemarkError('ErrInvalidArgument', `method ${method} is not allowed on ${path}`);
    throw new TidemarkError('ErrNotFound', `no such API route: ${method} ${path}`);
  }
}

export function errorResult(error: unknown): ApiResult {
  const e =
    error instanceof TidemarkError
      ? error
      : new TidemarkError('ErrBugIndicating', error instanceof Error ? error.message : String(error), { cause: error });
  return { status: e.httpStatus, body: { error_code: e.code, error_msg: e.message, ...(e.hint === undefined ? {} : { hint: e.hint }) } };
}

function bigintReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? value.toString() : value;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 4 * 1024 * 1024) throw new TidemarkError('ErrInvalidArgument', 'request body over 4 MiB');
    chunks.push(chunk);
  }
  if (size === 0) return undefined;
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8')) as unknown;
  } catch {
    throw new TidemarkError('ErrInvalidArgument', 'request body is not valid JSON');
  }
}
