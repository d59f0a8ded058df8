import { Text } from 'ink';
import { lagLevel } from '../state.js';
import { formatLag, pad } from '../format.js';

const COLORS = { ok: 'green', behind: 'yellow', stalled: 'red', unknown: 'gray' } as const;

/** A lag figure coloured by how far behind it is: green < 1 s, yellow < 10 s, red beyond. */
export function Lag({ lag, width }: { readonly lag: number | null; readonly width: number }) {
  return <Text color={COLORS[lagLevel(lag)]}>{pad(formatLag(lag), width)}</Text>;
}
