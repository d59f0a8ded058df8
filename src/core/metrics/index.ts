export { ChangefeedMetrics, FEED_STATE_CODES, TidemarkMetrics, lagSeconds } from './metrics.js';
