import { TidemarkError, type ErrorCode } from '../errors/index.js';
import { errorCatalogue } from '../errors/codes.js';
import type { ChangefeedDetail, ChangefeedSummary, CreateChangefeedRequest, UpdateChangefeedRequest } from '../owner/changefeed-admin.js';
import type { CaptureSummary } from '../server/server.js';
import type { TableProgress } from '../server/table-progress.js';

/** A request body as the client builds it: fields left undefined are not sent (JSON drops them). */
type Body<T> = { readonly [K in keyof T]?: T[K] | undefined };

/** GET /api/v2/status: the capture answering. */
export interface ServerStatus {
  readonly version: string;
  readonly git_hash: string;
  readonly id: string;
  readonly cluster_id: string;
  readonly pid: number;
  readonly is_owner: boolean;
  readonly liveness: number;
}

/** GET /api/v2/processors: which capture runs which changefeed. */
export interface ProcessorSummary {
  readonly changefeed_id: string;
  readonly namespace: string;
  readonly capture_id: string;
}

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

  // ---- the OpenAPI's routes, typed; a changefeed is always named with its namespace

  status(): Promise<ServerStatus> {
    return this.request('GET', '/api/v2/status');
  }

  async captures(): Promise<CaptureSummary[]> {
    return (await this.request<{ items: CaptureSummary[] }>('GET', '/api/v2/captures')).items;
  }

  async processors(): Promise<ProcessorSummary[]> {
    return (await this.request<{ items: ProcessorSummary[] }>('GET', '/api/v2/processors')).items;
  }

  /** The changefeeds of every namespace; `all` includes stopped, failed and finished ones. */
  async changefeeds(options: { readonly all?: boolean } = {}): Promise<ChangefeedSummary[]> {
    return (await this.request<{ items: ChangefeedSummary[] }>('GET', `/api/v2/changefeeds${options.all === true ? '?state=all' : ''}`)).items;
  }

  changefeed(id: string, namespace: string): Promise<ChangefeedDetail> {
    return this.request('GET', changefeedPath(id, namespace));
  }

  async tables(id: string, namespace: string): Promise<TableProgress[]> {
    return (await this.request<{ items: TableProgress[] }>('GET', changefeedPath(id, namespace, '/tables'))).items;
  }

  createChangefeed(request: Body<CreateChangefeedRequest>): Promise<ChangefeedDetail> {
    return this.request('POST', '/api/v2/changefeeds', request);
  }

  updateChangefeed(id: string, namespace: string, request: Body<UpdateChangefeedRequest>): Promise<ChangefeedDetail> {
    return this.request('PUT', changefeedPath(id, namespace), request);
  }

  pauseChangefeed(id: string, namespace: string): Promise<ChangefeedDetail> {
    return this.request('POST', changefeedPath(id, namespace, '/pause'));
  }

  /** `overwriteCheckpointTs`: start again from there instead of the checkpoint. */
  resumeChangefeed(id: string, namespace: string, overwriteCheckpointTs?: string): Promise<ChangefeedDetail> {
    return this.request('POST', changefeedPath(id, namespace, '/resume'), overwriteCheckpointTs === undefined ? {} : { overwrite_checkpoint_ts: overwriteCheckpointTs });
  }

  async removeChangefeed(id: string, namespace: string): Promise<void> {
    await this.request('DELETE', changefeedPath(id, namespace));
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

function changefeedPath(id: string, namespace: string, tail = ''): string {
  return `/api/v2/changefeeds/${encodeURIComponent(id)}${tail}?namespace=${encodeURIComponent(namespace)}`;
}
