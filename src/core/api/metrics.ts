import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';

/** The Prometheus metrics of one `cdc server` process, served on GET /metrics. */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly isOwner = new Gauge({ name: 'tidemark_owner_is_owner', help: '1 while this capture is the owner', registers: [this.registry] });
  readonly captureIncarnations = new Counter({
    name: 'tidemark_capture_incarnations_total',
    help: 'Capture incarnations started (1 + etcd session losses)',
    registers: [this.registry],
  });
  readonly capturesAlive = new Gauge({ name: 'tidemark_cluster_captures', help: 'Captures registered in etcd, as this capture sees them', registers: [this.registry] });
  readonly httpRequests = new Counter({
    name: 'tidemark_http_requests_total',
    help: 'HTTP API requests by route and status',
    labelNames: ['route', 'status'] as const,
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'tidemark_' });
  }
}
