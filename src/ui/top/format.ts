/** Display helpers shared by the views and the one-shot printer. */
export function formatLag(lag: number | null): string {
  if (lag === null) return '—';
  if (lag < 1000) return `${lag}ms`;
  if (lag < 60_000) return `${(lag / 1000).toFixed(1)}s`;
  if (lag < 3_600_000) return `${Math.floor(lag / 60_000)}m${Math.floor((lag % 60_000) / 1000)}s`;
  return `${Math.floor(lag / 3_600_000)}h${Math.floor((lag % 3_600_000) / 60_000)}m`;
}

export function formatTime(ms: number | null): string {
  return ms === null ? '—' : new Date(ms).toISOString().slice(11, 23);
}

export function formatRate(rate: number | null): string {
  if (rate === null) return '—';
  return rate >= 10_000 ? `${(rate / 1000).toFixed(0)}k` : rate.toFixed(0);
}

export function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes}B`;
  if (bytes < 1 << 20) return `${(bytes / 1024).toFixed(0)}K`;
  if (bytes < 1 << 30) return `${(bytes / (1 << 20)).toFixed(1)}M`;
  return `${(bytes / (1 << 30)).toFixed(2)}G`;
}

export function pad(text: string, width: number): string {
  return text.length > width ? `${text.slice(0, Math.max(0, width - 1))}…` : text.padEnd(width);
}

/** A row count: exact below 100000, then 123.4k, 1.23M, 1.23G. */
export function formatCount(count: number): string {
  if (count < 100_000) return String(count);
  if (count < 1_000_000) return `${(count / 1000).toFixed(1)}k`;
  if (count < 1_000_000_000) return `${(count / 1_000_000).toFixed(2)}M`;
  return `${(count / 1_000_000_000).toFixed(2)}G`;
}

/** Time left, in seconds, as a lag is shown (`46.0s`, `3m20s`, `1h5m`). */
export function formatEta(seconds: number | null): string {
  return seconds === null ? '—' : formatLag(Math.round(seconds) * 1000);
}

/**
 * A progress bar `width` cells wide for a fraction in [0, 1] (capped); null: indeterminate (the amount to do is
 * not known), drawn as shaded cells.
 */
export function progressBar(fraction: number | null, width: number): string {
  if (fraction === null) return '▒'.repeat(width);
  const filled = Math.floor(Math.min(1, Math.max(0, fraction)) * width);
  return '█'.repeat(filled) + '░'.repeat(width - filled);
}
