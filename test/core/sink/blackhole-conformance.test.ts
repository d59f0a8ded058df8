import { factory } from '../../../plugins/sink-blackhole/src/index.js';
import { describeSinkConformance } from '../../../src/core/sink/testkit.js';

// The blackhole keeps no rows, so the suite checks the calls, flush and close only.
describeSinkConformance('blackhole', { factory, uri: () => new URL('blackhole://') });
