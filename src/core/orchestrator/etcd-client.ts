import { InterceptingCall, Metadata, status as GrpcStatus, type ChannelCredentials, type Interceptor } from '@grpc/grpc-js';
import { castGrpcError, ClientClosedError, Etcd3, type ILeaseOptions, type IOptions, type Lease, type Namespace, type Watcher } from 'etcd3';
import { BugIndicatingError } from '../errors/index.js';

/**
 * The parts of etcd3's internal `WatchManager` (one per namespace, it multiplexes every watcher on one gRPC
 * stream) that closing needs. They are private in etcd3, so their shape is checked when a client is built.
 */
interface WatchManagerInternals {
  /** 0 idle, 1 connecting, 2 connected (etcd3's const enum `State`). */
  state: number;
  watchers: Watcher[];
  /** Watchers whose cancel request was sent and not yet answered. */
  expectedClosers: Set<Watcher>;
  stream?: { cancel(): void };
  queue?: { destroy(): void };
  backoff: WatchBackoff;
  establishStream(): void;
  handleError(error: Error): void;
}

/** cockatiel's `IBackoff`, as etcd3's WatchManager uses it. */
interface WatchBackoff {
  readonly duration: number;
  next(context?: unknown): WatchBackoff | undefined;
}

const WATCH_IDLE = 0;
const WATCH_CONNECTED = 2;

/** Tracks every gRPC call an etcd3 client starts, so that closing can end the ones still open. */
class GrpcCalls {
  private readonly open = new Set<InterceptingCall>();

  /** A client interceptor (grpc-js `ClientOptions.interceptors`) that registers each call until it has its status. */
  readonly interceptor: Interceptor = (options, nextCall) => {
    const call: InterceptingCall = new InterceptingCall(nextCall(options), {
      start: (metadata, listener, next) => {
        next(metadata, {
          onReceiveStatus: (status, nextStatus) => {
            this.open.delete(call);
            nextStatus(status);
          },
        });
      },
    });
    this.open.add(call);
    return call;
  };

  get size(): number {
    return this.open.size;
  }

  cancelAll(details: string): void {
    const calls = [...this.open];
    this.open.clear();
    for (const call of calls) call.cancelWithStatus(GrpcStatus.CANCELLED, details);
  }
}

/**
 * The project's etcd client: etcd3's `Etcd3` whose `close()` leaves no timer or socket behind.
 *
 * `Etcd3.close()` only closes its gRPC channels. grpc-js lets the calls already open on a closed channel go
 * on, and etcd3 keeps retrying on its own, so before this wrapper a closed client could keep the process
 * alive indefinitely:
 * - the watch stream stayed open; once it broke, etcd3's WatchManager re-scheduled a reconnect timer (with its
 *   backoff, up to 30 s) for as long as a watcher was attached, and each attempt after close failed with
 *   `ClientClosedError` and scheduled the next one. Both the stream's `error` and `end` reschedule, so several
 *   such chains could run at once. A watcher whose cancel was never answered, or whose creation was
 *   abandoned, stays attached forever.
 * - a lease that was not revoked kept its keepalive stream, its keepalive interval and its timeout, and after
 *   an error retried every 100 ms until twice its TTL had passed;
 * - a unary call (with cockatiel's retry around it) over a connection that no longer answers never ended.
 *
 * `close()` here, in this order: stops watch reconnects and detaches every watcher (`end` for one being
 * cancelled, so that cancel resolves; `error` with etcd3's `ClientClosedError` for the others, or `end` when
 * nobody listens for errors); releases every lease it granted (no keepalive; the lease expires after its
 * TTL unless it was revoked); closes etcd3's channels; then cancels every gRPC call still open, which lets
 * grpc-js close the connections. Whatever etcd3 does in reaction ends at once with `ClientClosedError`
 * instead of retrying. What may remain is bounded: etcd3 closes a channel that is still connecting through
 * grpc-js `waitForReady` with a 1 s deadline, and a lease keepalive retry already scheduled fires once
 * (within 100 ms) and stops.
 *
 * Watch reconnects are scheduled by this class (one timer per client, the same backoff as etcd3's) so that
 * close can cancel them. `namespace()` and `lock()` are not supported: their watches and leases would escape
 * close. Tidemark uses neither.
 *
 * Not contained (grpc-js 1.14): when etcd3 drops a channel during an outage (it does on every retryable
 * error) while its subchannel is in TRANSIENT_FAILURE with a reconnect pending, that subchannel reconnects
 * after its backoff although nothing references it any more, and keeps an idle connection that no channel
 * owns. grpc-js unrefs idle connections, so it never keeps the process alive, but it stays open until etcd
 * closes it.
 */
export class EtcdClient extends Etcd3 {
  private readonly calls: GrpcCalls;
  private readonly leases = new Set<Lease>();
  private readonly watches: WatchManagerInternals;
  private watchRetry: NodeJS.Timeout | undefined;
  private isClosed = false;

  constructor(options: IOptions) {
    const calls = new GrpcCalls();
    const grpcOptions = options.grpcOptions ?? {};
    const interceptors = (grpcOptions['interceptors'] as Interceptor[] | undefined) ?? [];
    super({ ...options, grpcOptions: { ...grpcOptions, interceptors: [...interceptors, calls.interceptor] } });
    this.calls = calls;
    this.watches = watchManagerOf(this);
    this.watches.handleError = (error) => this.onWatchStreamError(error);
    if (options.auth !== undefined) this.closeAuthClients();
  }

  /**
   * With user/password auth, etcd3 fetches a token through a new gRPC client per attempt and never closes it
   * (its channel and socket would stay until etcd drops them). This makes each such client closed once it has
   * answered, and its call tracked like the others.
   */
  private closeAuthClients(): void {
    const pool = (this as unknown as { pool?: { hosts?: { getServiceClient(name: string): unknown }[]; authenticator?: { getCredentialsFromHost?: unknown } } }).pool;
    const authenticator = pool?.authenticator;
    const host = pool?.hosts?.[0];
    if (authenticator === undefined || typeof authenticator.getCredentialsFromHost !== 'function' || host === undefined) {
      throw new BugIndicatingError("etcd3's internal Authenticator is not shaped as EtcdClient expects; check src/core/orchestrator/etcd-client.ts against this etcd3 version");
    }
    type AuthClient = {
      authenticate(req: { name: string; password: string }, metadata: Metadata, options: object, callback: (error: Error | null, res?: { token: string }) => void): void;
      close(): void;
    };
    // the generated Auth client class, from the host's own (cached, closed with the host) instance
    const AuthClientClass = (host.getServiceClient('Auth') as object).constructor as new (address: string, credentials: ChannelCredentials, options: object) => AuthClient;
    const interceptor = this.calls.interceptor;
    authenticator.getCredentialsFromHost = (address: string, name: string, password: string, callOptions: object | undefined, credentials: ChannelCredentials): Promise<string> => {
      if (this.isClosed) return Promise.reject(new ClientClosedError('Auth'));
      const client = new AuthClientClass(address, credentials, { interceptors: [interceptor] });
      return new Promise<string>((resolve, reject) =>
        client.authenticate({ name, password }, new Metadata(), callOptions ?? {}, (error, res) => {
          client.close();
          if (error !== null) reject(castGrpcError(error));
          else resolve(res?.token ?? '');
        }),
      );
    };
  }

  get closed(): boolean {
    return this.isClosed;
  }

  /** gRPC calls of this client that have not ended yet (streams included). */
  get openCalls(): number {
    return this.calls.size;
  }

  /** A lease whose keepalive ends when this client closes (see `Namespace.lease`). */
  override lease(ttl: number, options?: ILeaseOptions): Lease {
    if (this.isClosed) throw new ClientClosedError('lease');
    for (const lease of this.leases) if (lease.revoked()) this.leases.delete(lease);
    const lease = super.lease(ttl, options);
    this.leases.add(lease);
    return lease;
  }

  /** Not supported: a namespace has its own watch manager, which close() would not reach. */
  override namespace(prefix: string | Buffer): Namespace {
    throw new BugIndicatingError(`EtcdClient does not support namespace("${prefix.toString()}"): its watches would outlive close()`);
  }

  /** Not supported: a lock's lease is made outside `lease()`, so close() would not release it. */
  override lock(key: string | Buffer): never {
    throw new BugIndicatingError(`EtcdClient does not support lock("${key.toString()}"): its lease would outlive close()`);
  }

  /**
   * Idempotent. Synchronous like `Etcd3.close()`: when it returns, no etcd3 timer is left that would retry
   * anything, and every open gRPC call is cancelled; sockets finish closing on the next turns of the loop.
   * Every later call on this client rejects with `ClientClosedError`.
   */
  override close(): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.closeWatches();
    for (const lease of this.leases) lease.release();
    this.leases.clear();
    super.close();
    this.calls.cancelAll('the etcd client was closed');
  }

  /** Replaces WatchManager.handleError: the same recovery, with a single reconnect timer that close cancels. */
  private onWatchStreamError(error: Error): void {
    const manager = this.watches;
    if (manager.state === WATCH_CONNECTED) {
      manager.queue?.destroy();
      manager.stream?.cancel();
    }
    manager.state = WATCH_IDLE;
    for (const watcher of manager.watchers) {
      watcher.emit('disconnected', error);
      (watcher as { id: string | null }).id = null;
    }
    clearTimeout(this.watchRetry);
    this.watchRetry = undefined;
    if (this.isClosed) return;
    const delayMs = manager.backoff.duration;
    manager.backoff = manager.backoff.next() ?? manager.backoff;
    this.watchRetry = setTimeout(() => {
      this.watchRetry = undefined;
      if (manager.state === WATCH_IDLE && !this.isClosed) manager.establishStream();
    }, delayMs);
  }

  private closeWatches(): void {
    clearTimeout(this.watchRetry);
    this.watchRetry = undefined;
    const manager = this.watches;
    const watchers = manager.watchers;
    const cancelling = new Set(manager.expectedClosers);
    manager.watchers = [];
    manager.expectedClosers.clear();
    if (manager.state === WATCH_CONNECTED) {
      manager.queue?.destroy();
      manager.stream?.cancel();
    }
    manager.state = WATCH_IDLE;
    for (const watcher of watchers) {
      if (cancelling.has(watcher) || watcher.listenerCount('error') === 0) watcher.emit('end');
      else watcher.emit('error', new ClientClosedError('watch'));
    }
  }
}

function watchManagerOf(client: Etcd3): WatchManagerInternals {
  const manager = (client as unknown as { watchManager?: Partial<WatchManagerInternals> }).watchManager;
  if (
    manager === undefined ||
    typeof manager.state !== 'number' ||
    !Array.isArray(manager.watchers) ||
    !(manager.expectedClosers instanceof Set) ||
    typeof manager.backoff?.next !== 'function' ||
    typeof manager.establishStream !== 'function' ||
    typeof manager.handleError !== 'function'
  ) {
    throw new BugIndicatingError("etcd3's internal WatchManager is not shaped as EtcdClient expects; check src/core/orchestrator/etcd-client.ts against this etcd3 version");
  }
  return manager as WatchManagerInternals;
}
