import { TidemarkError, type ErrorCode } from '../errors/index.js';
import { errorCatalogue } from '../errors/codes.js';

/** The CLI's client of a capture's OpenAPI: every command talks to `--server`, never to etcd. */
export class ApiClient {
  readonly base: URL;

  /**
   * `timeoutMs` bounds each request; a server that accepted the connection and did not answer in time is a
   * timeout (the request may still complete there), not an unreachable server.
   */
  constructor(server: string, private readonly timeoutMs = 10_000) {
    let url: URL;
    try {
      url = new URL(/^[a-z]+:\/\//i.test(server) ? server : `http://${server}`);
    } catch {
      throw new TidemarkError('ErrInvalidArgument', `invalid --server "${server}": expected a URL such as http://127.0.0.1:8300`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TidemarkError('ErrInvalidArgument', `invalid --server "${server}": scheme must be http or https`);
    }
    this.base = url;
  }

  get<T>(path: string): Promise<T> {
    return this.request<T>('GET', path);
  }

  /** POST by default; PUT and DELETE for the routes that take them. */
  post<T>(path: string, body?: unknown, method: 'POST' | 'PUT' | 'DELETE' = 'POST'): Promise<T> {
    return this.request<T>(method, path, body);
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const url = new URL(path, this.base);
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        signal: AbortSignal.timeout(this.timeoutMs),
        ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }),
      });
    } catch (error) {
      if ((error as Error).name === 'TimeoutError') {
        throw new TidemarkError('ErrTimeout', `the cdc server at ${this.base.origin} did not answer ${method} ${url.pathname} within ${this.timeoutMs / 1000} s`, {
          hint: method === 'GET' ? 'the server is busy or stuck; try again, and look at its log' : 'the server may still complete the request: look before repeating it (e.g. `cdc changefeed list`), and at the server log',
          details: { server: this.base.origin, timeoutMs: this.timeoutMs },
          cause: error,
        });
      }
      const cause = (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name;
      throw new TidemarkError('ErrServiceUnreachable', `cannot reach the cdc server at ${this.base.origin} (${cause})`, {
        hint: 'check --server and that `cdc server` is running there',
        details: { server: this.base.origin },
        cause: error,
      });
    }
    const text = await res.text();
    let json: unknown;
    try {
      json = text.length === 0 ? {} : JSON.parse(text);
    } catch {
      throw new TidemarkError('ErrServiceUnreachable', `${this.base.origin} answered ${method} ${path} with non-JSON (HTTP ${res.status})`);
    }
    if (!res.ok) {
      const { error_code: code, error_msg: msg } = json as { error_code?: string; error_msg?: string };
      const known = code !== undefined && code in errorCatalogue ? (code as ErrorCode) : 'ErrBugIndicating';
      throw new TidemarkError(known, msg ?? `HTTP ${res.status} from ${method} ${path}`, { details: { httpStatus: res.status } });
    }
    return json as T;
  }
}
