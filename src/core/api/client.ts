import { readFileSync } from 'node:fs';
import { TidemarkError, type ErrorCode } from '../errors/index.js';
import { requestText, type HttpAnswer, type HttpTls } from './http-request.js';
import { clusterTlsError } from './tls-errors.js';
import { errorCatalogue } from '../errors/codes.js';
import { MAX_TABLE_LIMIT, tableQueryParams, type TablePage, type TableQuery } from './table-page.js';
import type { CaptureSummary, ChangefeedDetail, ChangefeedSinkInfo, ChangefeedSummary, CreateChangefeedRequest, ProcessorSummary, ServerStatus, TableProgress, UpdateChangefeedRequest } from './model.js';

/** A request body as the client builds it: fields left undefined are not sent (JSON drops them). */
type Body<T> = { readonly [K in keyof T]?: T[K] | undefined };

/** How the CLI reaches a TLS server and who it is to the API (`--ca --cert --key --user --password`). */
export interface ApiClientOptions {
  /** PEM files: the CA that signed the server's certificate, and the client certificate and key to present. */
  readonly caPath?: string | undefined;
  readonly certPath?: string | undefined;
  readonly keyPath?: string | undefined;
  /** An API user of the server's security.client-user-list and its password (HTTP Basic); no user: no credentials sent. */
  readonly user?: string | undefined;
  readonly password?: string | undefined;
}

/** The CLI's client of a capture's OpenAPI: every command talks to `--server`, never to etcd. */
export class ApiClient {
  readonly base: URL;
  private readonly tls: HttpTls | undefined;
  private readonly authorization: string | undefined;

  /**
   * `timeoutMs` bounds each request; a server that accepted the connection and did not answer in time is a
   * timeout (the request may still complete there), not an unreachable server. A server given without a scheme
   * is http://, or https:// when a CA or a client certificate is given.
   */
  constructor(
    server: string,
    private readonly timeoutMs = 10_000,
    private readonly options: ApiClientOptions = {},
  ) {
    const secure = options.caPath !== undefined || options.certPath !== undefined;
    let url: URL;
    try {
      url = new URL(/^[a-z]+:\/\//i.test(server) ? server : `${secure ? 'https' : 'http'}://${server}`);
    } catch {
      throw new TidemarkError('ErrInvalidArgument', `invalid --server "${server}": expected a URL such as http://127.0.0.1:8300`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new TidemarkError('ErrInvalidArgument', `invalid --server "${server}": scheme must be http or https`);
    }
    if (secure && url.protocol === 'http:') {
      throw new TidemarkError('ErrInvalidArgument', `--server ${url.origin} is plaintext http, but --ca/--cert are for TLS: use https://${url.host}`);
    }
    if ((options.certPath === undefined) !== (options.keyPath === undefined)) {
      throw new TidemarkError('ErrInvalidArgument', `--cert and --key go together; got only ${options.certPath === undefined ? '--key' : '--cert'}`);
    }
    if (options.user !== undefined && options.user.includes(':')) {
      throw new TidemarkError('ErrInvalidArgument', `--user "${options.user}" must not contain ":"`);
    }
    this.base = url;
    this.tls = secure ? { ca: readPem('--ca', options.caPath), cert: readPem('--cert', options.certPath), key: readPem('--key', options.keyPath) } : undefined;
    this.authorization = options.user === undefined ? undefined : `Basic ${Buffer.from(`${options.user}:${options.password ?? ''}`, 'utf8').toString('base64')}`;
  }

  // ---- the OpenAPI's routes, typed; a changefeed is always named with its namespace

  status(): Promise<ServerStatus> {
    return this.request('GET', '/api/v2/status');
  }

  /** Resolves when the capture is alive and the cluster has an owner; rejects (ErrClusterUnhealthy, …) otherwise. */
  async health(): Promise<void> {
    await this.request('GET', '/api/v2/health');
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

  /** Every table of the changefeed, read a page at a time (by name). */
  async tables(id: string, namespace: string): Promise<TableProgress[]> {
    const all: TableProgress[] = [];
    let after: string | undefined;
    for (;;) {
      const page = await this.tablePage(id, namespace, { limit: MAX_TABLE_LIMIT, after });
      all.push(...page.items);
      // a server from before paging answers every table at once, without `next`
      if (page.next === null || page.next === undefined) return all;
      after = page.next;
    }
  }

  /** One page of the changefeed's tables, filtered and sorted on the server. */
  tablePage(id: string, namespace: string, query: Partial<TableQuery>): Promise<TablePage> {
    return this.request('GET', `${changefeedPath(id, namespace, '/tables')}&${tableQueryParams(query).toString()}`);
  }

  /** The changefeed's processor on this capture and its sink's own counters (ErrNotFound where it does not run). */
  sinkInfo(id: string, namespace: string): Promise<ChangefeedSinkInfo> {
    return this.request('GET', changefeedPath(id, namespace, '/sink'));
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
    let res: HttpAnswer;
    try {
      res = await requestText({
        method,
        url,
        signal: AbortSignal.timeout(this.timeoutMs),
        tls: this.tls,
        headers: {
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
          ...(this.authorization === undefined ? {} : { authorization: this.authorization }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (error) {
      const tlsError = clusterTlsError(error, { where: `the cdc server at ${this.base.origin}`, caPath: this.options.caPath, caFlag: '--ca', secure: this.base.protocol === 'https:' });
      if (tlsError !== undefined) throw tlsError;
      if ((error as Error).name === 'TimeoutError') {
        throw new TidemarkError('ErrTimeout', `the cdc server at ${this.base.origin} did not answer ${method} ${url.pathname} within ${this.timeoutMs / 1000} s`, {
          hint: method === 'GET' ? 'the server is busy or stuck; try again, and look at its log' : 'the server may still complete the request: look before repeating it (e.g. `cdc changefeed list`), and at the server log',
          details: { server: this.base.origin, timeoutMs: this.timeoutMs },
          cause: error,
        });
      }
      const cause = (error as { code?: string }).code ?? (error as { cause?: { code?: string } }).cause?.code ?? (error as Error).name;
      const reset = cause === 'ECONNRESET' || /socket hang up/i.test((error as Error).message);
      throw new TidemarkError('ErrServiceUnreachable', `cannot reach the cdc server at ${this.base.origin} (${cause})`, {
        hint: reset && this.base.protocol === 'http:' ? 'the server ended the connection: if it serves TLS (--cert/--key), use https:// and --ca' : 'check --server and that `cdc server` is running there',
        details: { server: this.base.origin },
        cause: error,
      });
    }
    const text = res.text;
    let json: unknown;
    try {
      json = text.length === 0 ? {} : JSON.parse(text);
    } catch {
      throw new TidemarkError('ErrServiceUnreachable', `${this.base.origin} answered ${method} ${path} with non-JSON (HTTP ${res.status})`);
    }
    if (res.status < 200 || res.status > 299) {
      const { error_code: code, error_msg: msg, hint } = json as { error_code?: string; error_msg?: string; hint?: unknown };
      const known = code !== undefined && code in errorCatalogue ? (code as ErrorCode) : 'ErrBugIndicating';
      throw new TidemarkError(known, msg ?? `HTTP ${res.status} from ${method} ${path}`, { details: { httpStatus: res.status }, ...(typeof hint === 'string' ? { hint } : {}) });
    }
    return json as T;
  }
}

function readPem(flag: string, path: string | undefined): string | undefined {
  if (path === undefined) return undefined;
  try {
    return readFileSync(path, 'utf8');
  } catch (error) {
    throw new TidemarkError('ErrConfigUnreadable', `cannot read ${flag} "${path}": ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
  }
}

function changefeedPath(id: string, namespace: string, tail = ''): string {
  return `/api/v2/changefeeds/${encodeURIComponent(id)}${tail}?namespace=${encodeURIComponent(namespace)}`;
}
