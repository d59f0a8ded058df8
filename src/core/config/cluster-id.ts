import { TidemarkError } from '../errors/index.js';

/** The cluster a capture joins when told none (TiCDC's). */
export const DEFAULT_CLUSTER_ID = 'default';

const CLUSTER_ID = /^[a-zA-Z0-9]+(-[a-zA-Z0-9]+)*$/;
const RESERVED = ['owner', 'capture', 'task', 'changefeed', 'job', 'meta'];

/** TiCDC's rule for `--cluster-id`: letters, digits and inner dashes, at most 128 characters, not a reserved word. */
export function validateClusterId(id: string): string {
  if (id.length === 0 || id.length > 128 || !CLUSTER_ID.test(id)) {
    throw new TidemarkError('ErrClusterIdInvalid', `invalid cluster id "${id}": it must match ^[a-zA-Z0-9]+(-[a-zA-Z0-9]+)*$ and be at most 128 characters`, {
      details: { value: id, pattern: CLUSTER_ID.source, maxLength: 128 },
    });
  }
  if (RESERVED.includes(id)) {
    throw new TidemarkError('ErrClusterIdInvalid', `invalid cluster id "${id}": it is reserved; reserved: ${RESERVED.join(', ')}`, {
      details: { value: id, reserved: RESERVED },
    });
  }
  return id;
}
