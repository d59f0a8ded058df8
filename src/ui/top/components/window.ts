/** The slice of a list that fits `height` rows and keeps `selected` in view. */
export function windowOf(length: number, selected: number, height: number): { start: number; end: number } {
  const size = Math.max(1, height);
  const start = Math.min(Math.max(0, selected - size + 1), Math.max(0, length - size));
  return { start, end: Math.min(length, start + size) };
}
