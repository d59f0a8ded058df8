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
