import { createHash, randomBytes, scrypt, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { TidemarkError } from '../errors/index.js';
import { PASSWORD_HASH_PATTERN } from '../config/server-config.js';

/** scrypt's cost parameters for new hashes: N=2^15, r=8, p=1 (about 32 MiB and 50-100 ms per check). */
const DEFAULT_PARAMS = { N: 32_768, r: 8, p: 1 } as const;
const KEY_LENGTH = 32;
/** A verified user/password is remembered this long, so that a polling client (cdc top) does not pay scrypt each time. */
const VERIFIED_TTL_MS = 60_000;

interface ParsedHash {
  readonly N: number;
  readonly r: number;
  readonly p: number;
  readonly salt: Buffer;
  readonly hash: Buffer;
}

function scryptAsync(password: string, salt: Buffer, keylen: number, params: { N: number; r: number; p: number }): Promise<Buffer> {
  return new Promise((resolve, reject) =>
    scrypt(password, salt, keylen, { ...params, maxmem: 256 * params.N * params.r + 1024 * 1024 }, (error, key) => (error === null ? resolve(key) : reject(error))),
  );
}

/** `scrypt$N$r$p$salt$hash` (salt and hash base64) of `password`, with a new random salt: what security.client-user-list stores. */
export async function hashPassword(password: string, params: { N: number; r: number; p: number } = DEFAULT_PARAMS): Promise<string> {
  if (password.length === 0) throw new TidemarkError('ErrInvalidArgument', 'the password is empty');
  const salt = randomBytes(16);
  const hash = await scryptAsync(password, salt, KEY_LENGTH, params);
  return `scrypt$${params.N}$${params.r}$${params.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** Parses a stored hash; ErrConfigInvalid naming the user (never the hash's content) when it is not one. */
export function parsePasswordHash(user: string, stored: string): ParsedHash {
  const bad = (why: string): TidemarkError =>
    new TidemarkError('ErrConfigInvalid', `the password hash of API user "${user}" in security.client-user-list is not valid: ${why}`, {
      hint: 'make one with `cdc hash-password` (it reads the password from stdin) and paste its output',
    });
  if (!PASSWORD_HASH_PATTERN.test(stored)) throw bad('expected scrypt$N$r$p$salt$hash');
  const [, n, r, p, salt, hash] = stored.split('$');
  const N = Number(n);
  if (N < 1024 || N > 1_048_576 || (N & (N - 1)) !== 0) throw bad('N must be a power of two from 1024 to 1048576');
  if (Number(r) < 1 || Number(r) > 32 || Number(p) < 1 || Number(p) > 16) throw bad('r must be 1 to 32 and p 1 to 16');
  const parsed = { N, r: Number(r), p: Number(p), salt: Buffer.from(salt, 'base64'), hash: Buffer.from(hash, 'base64') };
  if (parsed.salt.length < 8 || parsed.hash.length < 16) throw bad('the salt or the hash is too short');
  return parsed;
}

/** Whether `password` matches `stored` (constant time in the comparison). */
export async function verifyPassword(password: string, stored: ParsedHash): Promise<boolean> {
  const derived = await scryptAsync(password, stored.salt, stored.hash.length, stored);
  return timingSafeEqual(derived, stored.hash);
}

export interface ApiAuthOptions {
  /** security.client-user-list: user → stored hash. Empty: no API authentication. */
  readonly users: Readonly<Record<string, string>>;
  /** security.client-auth-reads: GET routes need a user too (except the open ones). */
  readonly reads: boolean;
}

/** Routes that stay open whatever the settings: liveness probes and Prometheus. */
const ALWAYS_OPEN = new Set(['GET /api/v2/status', 'GET /api/v2/health', 'GET /metrics']);

/**
 * The OpenAPI's user check (HTTP Basic, TiCDC's client-user-list idea). With users configured, every write (any
 * method but GET/HEAD) needs one of them with its password, and reads too when `reads`; a missing or wrong one is
 * ErrUnauthorized (401) before the handler runs, so nothing is changed. Passwords are checked against scrypt
 * hashes; a successful check is remembered for a minute by a SHA-256 of the credentials (never the password).
 */
export class ApiAuth {
  private readonly users = new Map<string, ParsedHash>();
  private readonly verified = new Map<string, number>();

  constructor(private readonly options: ApiAuthOptions) {
    for (const [user, stored] of Object.entries(options.users)) this.users.set(user, parsePasswordHash(user, stored));
  }

  get enabled(): boolean {
    return this.users.size > 0;
  }

  /** Whether `method route` needs a user. `route` is the route's pattern (its label). */
  required(method: string, route: string): boolean {
    if (!this.enabled || ALWAYS_OPEN.has(`${method} ${route}`)) return false;
    return (method !== 'GET' && method !== 'HEAD') || this.options.reads;
  }

  /** Throws ErrUnauthorized unless the request carries a configured user and its password. Returns the user. */
  async check(req: IncomingMessage): Promise<string> {
    const credentials = basicCredentials(req.headers.authorization);
    if (credentials === undefined) {
      throw new TidemarkError('ErrUnauthorized', `${req.method ?? 'GET'} ${new URL(req.url ?? '/', 'http://x').pathname} needs an API user: this server has security.client-user-list`, {
        hint: 'pass --user and --password (or TIDEMARK_PASSWORD) to the cdc command',
      });
    }
    const { user, password } = credentials;
    const stored = this.users.get(user);
    const key = createHash('sha256').update(`${user}\0${password}`).digest('base64');
    const until = this.verified.get(key);
    if (stored !== undefined && until !== undefined && until > Date.now()) return user;
    // an unknown user costs the same scrypt as a known one, so that timing does not tell them apart
    const ok = await verifyPassword(password, stored ?? DUMMY);
    if (stored === undefined || !ok) {
      throw new TidemarkError('ErrUnauthorized', `authentication failed for API user "${user.slice(0, 64)}": unknown user or wrong password`, {
        hint: 'check --user and --password (or TIDEMARK_PASSWORD) against the server\'s security.client-user-list',
      });
    }
    if (this.verified.size > 1000) this.verified.clear();
    this.verified.set(key, Date.now() + VERIFIED_TTL_MS);
    return user;
  }
}

const DUMMY: ParsedHash = { ...DEFAULT_PARAMS, salt: Buffer.alloc(16), hash: Buffer.alloc(KEY_LENGTH, 1) };

function basicCredentials(header: string | undefined): { user: string; password: string } | undefined {
  const m = /^Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i.exec(header ?? '');
  if (m === null) return undefined;
  const text = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon <= 0) return undefined;
  return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** The Authorization header value for `user` and `password`. */
export function basicAuthorization(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`, 'utf8').toString('base64')}`;
}
