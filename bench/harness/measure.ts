/**
 * What the harness measures outside Tidemark: binlog positions and sizes on the upstream, CPU and RSS of
 * processes from /proc, the MariaDB ceilings (mariadb-binlog raw read and decode of the same range).
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type mysql from 'mysql2/promise';

export interface BinlogPos {
  readonly file: string;
  readonly pos: number;
  /** Tidemark's ts of this position: (file sequence << 32) | offset. */
  readonly ts: bigint;
}

export function tsOf(file: string, pos: number): bigint {
  const seq = /\.(\d+)$/.exec(file);
  if (seq === null) throw new Error(`binlog file name without a sequence number: ${file}`);
  return (BigInt(seq[1]) << 32n) | BigInt(pos);
}

/** The upstream's end of binlog (SHOW MASTER STATUS), on `conn`: after a commit on it, that commit's end. */
export async function masterPos(conn: mysql.Connection): Promise<BinlogPos> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>('SHOW MASTER STATUS');
  if (rows.length === 0) throw new Error('SHOW MASTER STATUS returned nothing: is the binlog on?');
  const file = String(rows[0]['File']);
  const pos = Number(rows[0]['Position']);
  return { file, pos, ts: tsOf(file, pos) };
}

/** The binlog files from `start` to `end`, inclusive, and the bytes between the two positions. */
export async function binlogRange(conn: mysql.Connection, start: BinlogPos, end: BinlogPos): Promise<{ files: string[]; bytes: number }> {
  const [rows] = await conn.query<mysql.RowDataPacket[]>('SHOW BINARY LOGS');
  const logs = rows.map((r) => ({ file: String(r['Log_name']), size: Number(r['File_size']) }));
  const from = logs.findIndex((l) => l.file === start.file);
  const to = logs.findIndex((l) => l.file === end.file);
  if (from < 0 || to < from) throw new Error(`binlog files ${start.file}..${end.file} not found in SHOW BINARY LOGS`);
  if (from === to) return { files: [start.file], bytes: end.pos - start.pos };
  let bytes = logs[from].size - start.pos + end.pos;
  for (let i = from + 1; i < to; i++) bytes += logs[i].size;
  return { files: logs.slice(from, to + 1).map((l) => l.file), bytes };
}

const CLK_TCK = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process, in seconds (0 when it is gone). */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): utime is field 14, stime field 15
    return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
  } catch {
    return 0;
  }
}

export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? 0 : Number(m[1]) * 1024;
  } catch {
    return 0;
  }
}

/** The mariadbd pid of a service started by scripts/services.sh (its pid files under .services/). */
export function servicePid(name: 'upstream' | 'downstream'): number | undefined {
  const dir = process.env['TIDEMARK_SERVICES_DIR'] ?? new URL('../../.services', import.meta.url).pathname;
  for (const file of [`${name}.mariadbd.pid`, `${name}.pid`]) {
    const path = join(dir, file);
    if (!existsSync(path)) continue;
    const pid = Number(readFileSync(path, 'utf8').trim());
    if (Number.isInteger(pid) && pid > 0 && existsSync(`/proc/${pid}`)) return pid;
  }
  return undefined;
}

/** CPU-seconds of a set of processes between start() and stop(), and the peak RSS of each (sampled every 100 ms). */
export class ProcSampler {
  private readonly cpu0 = new Map<string, number>();
  private readonly cpu1 = new Map<string, number>();
  readonly peakRss = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private t0 = 0;
  seconds = 0;

  constructor(private readonly pids: ReadonlyMap<string, number>) {}

  start(): this {
    this.t0 = performance.now();
    for (const [name, pid] of this.pids) {
      this.cpu0.set(name, cpuSeconds(pid));
      this.peakRss.set(name, rssBytes(pid));
    }
    this.timer = setInterval(() => this.sample(), 100);
    return this;
  }

  private sample(): void {
    for (const [name, pid] of this.pids) this.peakRss.set(name, Math.max(this.peakRss.get(name) ?? 0, rssBytes(pid)));
  }

  stop(): this {
    if (this.timer === undefined) return this;
    clearInterval(this.timer);
    this.timer = undefined;
    this.sample();
    this.seconds = (performance.now() - this.t0) / 1000;
    for (const [name, pid] of this.pids) this.cpu1.set(name, cpuSeconds(pid));
    return this;
  }

  cpu(name: string): number | undefined {
    const a = this.cpu0.get(name);
    const b = this.cpu1.get(name);
    return a === undefined || b === undefined ? undefined : b - a;
  }
}

function runTool(command: string, args: readonly string[], stdout: 'ignore' | 'pipe'): Promise<{ seconds: number; output: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(command, args, { stdio: ['ignore', stdout, 'pipe'] });
    let err = '';
    let out = 0;
    child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
    child.stdout?.on('data', (d: Buffer) => (out += d.length));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code === 0) resolve({ seconds: (performance.now() - t0) / 1000, output: String(out) });
      else reject(new Error(`${command} ${args.join(' ')} exited with ${code}: ${err.slice(-2000)}`));
    });
  });
}

export interface BinlogCeilings {
  /** seconds for `mariadb-binlog --read-from-remote-server --raw` of the range, and the bytes it wrote */
  readonly rawSeconds: number;
  readonly rawBytes: number;
  /** seconds for `mariadb-binlog --read-from-remote-server -v` of the range to /dev/null */
  readonly decodeSeconds: number;
}

/** MariaDB's own tools over the same binlog range, one after the other. */
export async function binlogCeilings(host: string, port: number, start: BinlogPos, end: BinlogPos, files: readonly string[]): Promise<BinlogCeilings> {
  const conn = ['--read-from-remote-server', `--host=${host}`, `--port=${port}`, '--user=root', '--skip-ssl'];
  const dir = mkdtempSync(join(tmpdir(), 'tidemark-bench-raw-'));
  try {
    // --raw copies events as they are; --stop-position bounds the last file, as for the decode below
    const raw = await runTool('mariadb-binlog', [...conn, '--raw', `--result-file=${dir}/`, `--start-position=${start.pos}`, `--stop-position=${end.pos}`, ...files], 'ignore');
    const rawBytes = readdirSync(dir).reduce((sum, f) => sum + statSync(join(dir, f)).size, 0);
    rmSync(dir, { recursive: true, force: true });
    const decode = await runTool('mariadb-binlog', [...conn, '-v', `--start-position=${start.pos}`, `--stop-position=${end.pos}`, ...files], 'pipe');
    return { rawSeconds: raw.seconds, rawBytes, decodeSeconds: decode.seconds };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
