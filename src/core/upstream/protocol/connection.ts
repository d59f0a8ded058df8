import { connect, type Socket } from 'node:net';
import { connect as tlsConnect, type TLSSocket } from 'node:tls';
import { crc32 } from 'node:zlib';
import { TidemarkError } from '../../errors/index.js';
import type { TlsSettings } from '../../config/uri.js';
import { cachingSha2Password, nativePassword, rsaEncryptedPassword } from './auth.js';
import { PacketReader, framePacket } from './packet-reader.js';
import { loadTls, tlsConnectOptions, tlsErrorOf } from './tls.js';

export interface ConnectionOptions {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly connectTimeoutMs?: number;
  /** ssl-mode and files of the URI (parseMySqlUri); absent: plaintext, as before TLS existed. */
  readonly tls?: TlsSettings;
  /** Never send the password in clear (caching_sha2_password full authentication over TLS): for probes over TLS that is not verified. */
  readonly noCleartext?: boolean;
}

const CLIENT = {
  LONG_PASSWORD: 0x1,
  PROTOCOL_41: 0x200,
  SSL: 0x800,
  TRANSACTIONS: 0x2000,
  SECURE_CONNECTION: 0x8000,
  PLUGIN_AUTH: 0x80000,
  PLUGIN_AUTH_LENENC_CLIENT_DATA: 0x200000,
} as const;
const CAPABILITIES = CLIENT.LONG_PASSWORD | CLIENT.PROTOCOL_41 | CLIENT.TRANSACTIONS | CLIENT.SECURE_CONNECTION | CLIENT.PLUGIN_AUTH | CLIENT.PLUGIN_AUTH_LENENC_CLIENT_DATA;
const UTF8MB4_GENERAL_CI = 45;

/** An ERR packet from the server, with its MySQL error code. */
export class ServerError extends Error {
  constructor(
    readonly errno: number,
    readonly sqlState: string,
    message: string,
  ) {
    super(message);
  }
}

export function parseErrPacket(payload: Buffer): ServerError {
  const errno = payload.readUInt16LE(1);
  const hasState = payload[3] === 0x23; // '#'
  const sqlState = hasState ? payload.toString('latin1', 4, 9) : '';
  return new ServerError(errno, sqlState, payload.toString('utf8', hasState ? 9 : 3));
}

/**
 * A raw MySQL protocol connection for replication: the handshake (mysql_native_password and
 * caching_sha2_password, with auth switch), simple statements, then COM_REGISTER_SLAVE and
 * COM_BINLOG_DUMP, after which every packet is handed to `onPacket` with the socket under the caller's
 * flow control (`pause`/`resume`).
 */
export class ProtocolConnection {
  private readonly reader = new PacketReader();
  private waiters: ((payload: Buffer) => void)[] = [];
  private queued: Buffer[] = [];
  private failure: Error | undefined;
  private onPacketHandler: ((payload: Buffer) => void) | undefined;
  private onCloseHandler: ((error: Error) => void) | undefined;
  serverVersion = '';
  connectionId = 0;
  /** The negotiated cipher when the connection runs over TLS (ssl-mode), else undefined. */
  cipher: string | undefined;
  private socket: Socket;
  private closedOnce = false;

  private constructor(socket: Socket) {
    this.socket = socket;
    this.listen(socket);
  }

  private listen(socket: Socket): void {
    socket.on('data', (chunk: Buffer) => {
      for (const payload of this.reader.push(chunk)) this.deliver(payload);
    });
    socket.on('error', (error) => this.closed(new TidemarkError('ErrConnectionLost', `replication connection failed: ${error.message}`, { cause: error })));
    socket.on('close', () => this.closed());
  }

  private closed(error?: Error): void {
    const reason = error ?? new TidemarkError('ErrConnectionLost', 'the upstream closed the replication connection');
    this.failure ??= reason;
    for (const w of this.waiters.splice(0)) w(Buffer.alloc(0));
    if (this.closedOnce) return;
    this.closedOnce = true;
    this.onCloseHandler?.(reason);
  }

  /**
   * Upgrades the socket to TLS after the SSL request (the server starts its TLS handshake then): the plain
   * socket's listeners go, the TLS socket's come; a verification failure rejects with a typed TLS error.
   */
  private async upgrade(options: ConnectionOptions, tls: TlsSettings): Promise<void> {
    const plain = this.socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('error');
    plain.removeAllListeners('close');
    plain.on('error', () => undefined); // reported by the TLS socket
    const loaded = loadTls(tls);
    const secure = await new Promise<TLSSocket>((resolve, reject) => {
      const s = tlsConnect({ socket: plain, ...tlsConnectOptions(loaded, options.host) });
      const timer = setTimeout(() => {
        s.destroy();
        reject(new TidemarkError('ErrTLSHandshake', `TLS handshake with the upstream ${options.host}:${options.port} did not finish within ${options.connectTimeoutMs ?? 5000} ms`));
      }, options.connectTimeoutMs ?? 5000);
      s.once('secureConnect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        resolve(s);
      });
      s.once('error', (error: Error) => {
        clearTimeout(timer);
        s.destroy();
        reject(tlsErrorOf(error, { host: options.host, port: options.port, tls }) ?? new TidemarkError('ErrTLSHandshake', `TLS handshake with the upstream ${options.host}:${options.port} failed: ${error.message}`, { cause: error }));
      });
    });
    this.cipher = secure.getCipher().name;
    this.socket = secure;
    this.listen(secure);
  }

  static async open(options: ConnectionOptions): Promise<ProtocolConnection> {
    const socket = await new Promise<Socket>((resolve, reject) => {
      const s = connect({ host: options.host, port: options.port });
      s.setNoDelay(true);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new TidemarkError('ErrUpstreamUnreachable', `upstream ${options.host}:${options.port} did not answer within ${options.connectTimeoutMs ?? 5000} ms`));
      }, options.connectTimeoutMs ?? 5000);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (error: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new TidemarkError('ErrUpstreamUnreachable', `cannot connect to the upstream ${options.host}:${options.port}: ${error.code ?? error.message}`, { cause: error }));
      });
    });
    const conn = new ProtocolConnection(socket);
    try {
      await conn.handshake(options);
    } catch (error) {
      conn.close();
      if ((error as { plaintextLogin?: boolean }).plaintextLogin === true && options.noCleartext !== true && (await acceptsOnlyTls(options))) {
        throw tlsRequiredError(options, error);
      }
      throw error;
    }
    return conn;
  }

  /** Runs a statement that returns no rows (SET …); rejects with the server's error. */
  async execute(sql: string): Promise<void> {
    this.reader.sequence = -1;
    this.send(Buffer.concat([Buffer.from([0x03]), Buffer.from(sql, 'utf8')]));
    const reply = await this.next();
    if (reply[0] === 0xff) throw parseErrPacket(reply);
    if (reply[0] !== 0x00) throw new TidemarkError('ErrBinlogCorrupt', `unexpected reply 0x${reply[0]?.toString(16)} to "${sql}"`);
  }

  /** COM_REGISTER_SLAVE with our server id. */
  async registerReplica(serverId: number): Promise<void> {
    const body = Buffer.alloc(18);
    body[0] = 0x15;
    body.writeUInt32LE(serverId, 1);
    // empty hostname, user, password (3 zero-length strings), port 0, rank 0, master id 0
    this.reader.sequence = -1;
    this.send(body);
    const reply = await this.next();
    if (reply[0] === 0xff) throw parseErrPacket(reply);
  }

  /**
   * Sends COM_BINLOG_DUMP; from then on every packet goes to `onPacket` (0x00 + event, 0xfe EOF, 0xff error)
   * and `onClose` is called once when the connection ends.
   */
  startDump(file: string, position: number, serverId: number, flags: number, onPacket: (payload: Buffer) => void, onClose: (error: Error) => void): void {
    const name = Buffer.from(file, 'utf8');
    const body = Buffer.alloc(11 + name.length);
    body[0] = 0x12;
    body.writeUInt32LE(position, 1);
    body.writeUInt16LE(flags, 5);
    body.writeUInt32LE(serverId, 7);
    name.copy(body, 11);
    this.onPacketHandler = onPacket;
    this.onCloseHandler = onClose;
    for (const p of this.queued.splice(0)) onPacket(p);
    this.reader.sequence = -1;
    this.send(body);
  }

  pause(): void {
    this.socket.pause();
  }

  resume(): void {
    this.socket.resume();
  }

  close(): void {
    this.socket.destroy();
  }

  private send(payload: Buffer): void {
    this.socket.write(framePacket(payload, (this.reader.sequence + 1) & 0xff));
  }

  private deliver(payload: Buffer): void {
    if (this.onPacketHandler !== undefined) {
      this.onPacketHandler(payload);
      return;
    }
    const waiter = this.waiters.shift();
    if (waiter !== undefined) waiter(payload);
    else this.queued.push(payload);
  }

  private next(): Promise<Buffer> {
    const queued = this.queued.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.failure !== undefined) return Promise.reject(this.failure);
    return new Promise((resolve, reject) => {
      this.waiters.push((payload) => (payload.length === 0 && this.failure !== undefined ? reject(this.failure) : resolve(payload)));
    });
  }

  private async handshake(options: ConnectionOptions): Promise<void> {
    const hello = await this.next();
    const where = `the upstream ${options.host}:${options.port}`;
    const tls = options.tls ?? { mode: 'disabled' };
    if (hello[0] === 0xff) throw toUpstreamError(parseErrPacket(hello), options);
    if (hello[0] !== 0x0a) throw new TidemarkError('ErrBinlogCorrupt', `unsupported handshake protocol ${hello[0]} from the upstream`);
    let offset = 1;
    const versionEnd = hello.indexOf(0, offset);
    this.serverVersion = hello.toString('latin1', offset, versionEnd);
    offset = versionEnd + 1;
    this.connectionId = hello.readUInt32LE(offset);
    offset += 4;
    const part1 = hello.subarray(offset, offset + 8);
    offset += 9; // + filler
    const capsLow = hello.readUInt16LE(offset);
    offset += 2 + 1 + 2; // caps, charset, status
    const capsHigh = hello.readUInt16LE(offset);
    offset += 2;
    const authDataLength = hello[offset];
    offset += 1 + 10;
    const serverCaps = capsLow | (capsHigh << 16);
    const part2Length = Math.max(13, authDataLength - 8);
    const part2 = hello.subarray(offset, offset + part2Length - 1); // drop the trailing NUL
    offset += part2Length;
    let plugin = serverCaps & CLIENT.PLUGIN_AUTH ? hello.toString('latin1', offset, hello.indexOf(0, offset) < 0 ? hello.length : hello.indexOf(0, offset)) : 'mysql_native_password';
    let scramble: Buffer = Buffer.concat([part1, part2]);

    const authResponse = (name: string, seed: Buffer): Buffer =>
      name === 'caching_sha2_password' ? cachingSha2Password(options.password, seed) : nativePassword(options.password, seed);
    let capabilities = CAPABILITIES & (serverCaps | CLIENT.PLUGIN_AUTH_LENENC_CLIENT_DATA);
    const serverTls = (serverCaps & CLIENT.SSL) !== 0;
    if (tls.mode !== 'disabled' && tls.mode !== 'preferred' && !serverTls) {
      throw new TidemarkError('ErrTLSUnavailable', `${where} offers no TLS, and ssl-mode=${tls.mode} requires it: enable TLS on the server (ssl_cert, ssl_key) or lower ssl-mode`);
    }
    if (tls.mode !== 'disabled' && serverTls) {
      // SSL request: the handshake response's first 32 bytes with CLIENT_SSL; then TLS, then the whole response
      capabilities |= CLIENT.SSL;
      const request = Buffer.alloc(32);
      request.writeUInt32LE(capabilities, 0);
      request.writeUInt32LE(MAX_PACKET_SIZE, 4);
      request[8] = UTF8MB4_GENERAL_CI;
      this.send(request);
      this.reader.sequence++;
      await this.upgrade(options, tls);
    }
    const user = Buffer.from(options.user, 'utf8');
    const response = authResponse(plugin, scramble);
    const packet = Buffer.alloc(32 + user.length + 1 + 1 + response.length + Buffer.byteLength(plugin) + 1);
    let p = 0;
    packet.writeUInt32LE(capabilities, p);
    p += 4;
    packet.writeUInt32LE(MAX_PACKET_SIZE, p);
    p += 4;
    packet[p++] = UTF8MB4_GENERAL_CI;
    p += 23;
    user.copy(packet, p);
    p += user.length + 1;
    packet[p++] = response.length; // < 251, so the lenenc integer is one byte
    response.copy(packet, p);
    p += response.length;
    packet.write(plugin, p, 'latin1');
    this.send(packet);

    for (;;) {
      const reply = await this.next();
      if (reply[0] === 0x00) return;
      if (reply[0] === 0xff) throw toUpstreamError(parseErrPacket(reply), options, serverTls && this.cipher === undefined);
      if (reply[0] === 0xfe) {
        // auth switch: another plugin and a new seed
        const end = reply.indexOf(0, 1);
        plugin = reply.toString('latin1', 1, end);
        scramble = reply.subarray(end + 1, reply.length - (reply[reply.length - 1] === 0 ? 1 : 0));
        this.send(authResponse(plugin, scramble));
        continue;
      }
      if (reply[0] === 0x01 && plugin === 'caching_sha2_password') {
        if (reply[1] === 0x03) continue; // fast auth succeeded; OK follows
        if (reply[1] === 0x04 && this.cipher !== undefined && options.noCleartext === true) {
          throw new TidemarkError('ErrTLSHandshake', 'the server asked for the password in clear; not sent on this probe');
        }
        if (reply[1] === 0x04 && this.cipher !== undefined) {
          // full authentication over TLS: the password itself, NUL-terminated (the channel is encrypted)
          this.send(Buffer.from(`${options.password}\0`, 'utf8'));
          continue;
        }
        if (reply[1] === 0x04) {
          this.send(Buffer.from([0x02])); // ask for the server's public key
          const key = await this.next();
          this.send(rsaEncryptedPassword(options.password, scramble, key.toString('latin1', 1)));
          continue;
        }
      }
      throw new TidemarkError('ErrBinlogCorrupt', `unexpected authentication reply 0x${reply[0]?.toString(16)} (plugin ${plugin})`);
    }
  }
}

const MAX_PACKET_SIZE = 1 << 30;

/**
 * Whether a server that refused a plaintext login (1045) takes the same login over TLS: MariaDB and MySQL with
 * require_secure_transport answer a plaintext login with a bare "Access denied", which alone would read as a
 * wrong password or a missing privilege. The probe does not verify the certificate, so it never sends the
 * password in clear (only the scramble answers the plaintext login sent already).
 */
export async function acceptsOnlyTls(options: Omit<ConnectionOptions, 'tls'>): Promise<boolean> {
  try {
    const conn = await ProtocolConnection.open({ ...options, tls: { mode: 'required' }, noCleartext: true });
    conn.close();
    return true;
  } catch {
    return false;
  }
}

/** The error for a plaintext login refused by a TLS-only server, when the probe says so. */
export function tlsRequiredError(target: { host: string; port: number; tls?: TlsSettings; what?: string }, cause: unknown): TidemarkError {
  return new TidemarkError(
    'ErrTLSRequired',
    `the ${target.what ?? 'upstream'} ${target.host}:${target.port} accepts this user only over TLS (require_secure_transport) and the connection was in plaintext (ssl-mode=${target.tls?.mode ?? 'disabled'}): ` +
      'add ssl-mode=verify-identity&ssl-ca=<CA file> (or verify-ca, required) to the URI',
    { cause },
  );
}

/** `plaintextToTls`: the login went in plaintext to a server that offers TLS (a refusal may mean it requires TLS). */
function toUpstreamError(error: ServerError, options: ConnectionOptions, plaintextToTls = false): TidemarkError {
  const tls = options.tls ?? { mode: 'disabled' as const };
  const tlsError = tlsErrorOf(error, { host: options.host, port: options.port, tls });
  if (tlsError !== undefined) return tlsError;
  if (error.errno === 1045 || error.errno === 1044) {
    if (error.errno === 1045 && plaintextToTls) {
      // only worth a probe when the login went in plaintext to a server that offers TLS (see acceptsOnlyTls)
      return Object.assign(new TidemarkError('ErrReplicationPrivilege', `the upstream refused user "${options.user}": ${error.message}`, { details: { errno: error.errno } }), { plaintextLogin: true });
    }
    return new TidemarkError('ErrReplicationPrivilege', `the upstream refused user "${options.user}": ${error.message}`, { details: { errno: error.errno } });
  }
  return new TidemarkError('ErrUpstreamUnreachable', `the upstream ${options.host}:${options.port} refused the connection: ${error.message} (errno ${error.errno})`);
}

/** Verifies a binlog event's CRC32 trailer. */
export function checksumMatches(event: Buffer): boolean {
  return crc32(event.subarray(0, event.length - 4)) === event.readUInt32LE(event.length - 4);
}
