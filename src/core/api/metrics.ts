import { TidemarkMetrics } from '../metrics/metrics.js';

/**
 * The Prometheus metrics of one `cdc server` process, served on GET /metrics. Every metric is defined in
 * `src/core/metrics/metrics.ts`; this name stays for the server and the API.
 */
export class ServerMetrics extends TidemarkMetrics {}
