import { appendFileSync } from 'node:fs';
import { TidemarkError } from '../errors/index.js';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export type LogFields = Readonly<Record<string, unknown>>;

/** A structured logger: one line per entry, `[time] [LEVEL] message key=value …` (TiCDC's shape). */
export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  with(fields: LogFields): Logger;
}

export interface LoggerOptions {
  readonly level?: LogLevel;
  /** Appends to this file; stderr when absent. */
  readonly file?: string | undefined;
}

export function createLogger(options: LoggerOptions = {}, base: LogFields = {}): Logger {
  const threshold = LOG_LEVELS.indexOf(options.level ?? 'info');
  const write = (level: LogLevel, message: string, fields: LogFields | undefined): void => {
    if (LOG_LEVELS.indexOf(level) < threshold) return;
    const all = { ...base, ...fields };
    const parts = Object.entries(all).map(([k, v]) => `[${k}=${formatValue(v)}]`);
    const line = `[${new Date().toISOString()}] [${level.toUpperCase()}] [${JSON.stringify(message)}]${parts.length ? ' ' + parts.join(' ') : ''}\n`;
    if (options.file === undefined) process.stderr.write(line);
    else appendFileSync(options.file, line);
  };
  return {
    debug: (m, f) => write('debug', m, f),
    info: (m, f) => write('info', m, f),
    warn: (m, f) => write('warn', m, f),
    error: (m, f) => write('error', m, f),
    with: (fields) => createLogger(options, { ...base, ...fields }),
  };
}

function formatValue(value: unknown): string {
  if (value instanceof TidemarkError) return JSON.stringify(`${value.code}: ${value.message}`);
  if (value instanceof Error) return JSON.stringify(value.message);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'string') return /[\s"[\]=]/.test(value) ? JSON.stringify(value) : value;
  return JSON.stringify(value) ?? String(value);
}

/** A logger that drops everything, for tests and library use. */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  with: () => silentLogger,
};
