import { connect, type Socket } from 'node:net';
import { crc32 } from 'node:zlib';
import { TidemarkError } from '../../errors/index.js';
import { cachingSha2Password, nativePassword, rsaEncryptedPassword } from './auth.js';
import { PacketReader, framePacket } from './packet-reader.js';

export interface ConnectionOptions {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly connectTimeoutMs?: number;
}

const CLIENT = {
  LONG_PASSWORD: 0x1,
  PROTOCOL_41: 0x200,
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

  private constructor(private readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      for (const payload of this.reader.push(chunk)) this.deliver(payload);
    });
    const closed = (error?: Error): void => {
      const reason = error ?? new TidemarkError('ErrConnectionLost', 'the upstream closed the replication connection');
      this.failure ??= reason;
      for (const w of this.waiters.splice(0)) w(Buffer.alloc(0));
      this.onCloseHandler?.(reason);
    };
    socket.on('error', (error) => closed(new TidemarkError('ErrConnectionLost', `replication connection failed: ${error.message}`, { cause: error })));
    socket.on('close', () => closed());
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
    const user = Buffer.from(options.user, 'utf8');
    const response = authResponse(plugin, scramble);
    const packet = Buffer.alloc(32 + user.length + 1 + 1 + response.length + Buffer.byteLength(plugin) + 1);
    let p = 0;
    packet.writeUInt32LE(CAPABILITIES & (serverCaps | CLIENT.PLUGIN_AUTH_LENENC_CLIENT_DATA), p);
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
      if (reply[0] === 0xff) throw toUpstreamError(parseErrPacket(reply), options);
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

function toUpstreamError(error: ServerError, options: ConnectionOptions): TidemarkError {
  if (error.errno === 1045 || error.errno === 1044) {
    return new TidemarkError('ErrReplicationPrivilege', `the upstream refused user "${options.user}": ${error.message}`, { details: { errno: error.errno } });
  }
  return new TidemarkError('ErrUpstreamUnreachable', `the upstream ${options.host}:${options.port} refused the connection: ${error.message} (errno ${error.errno})`);
}

/** Verifies a binlog event's CRC32 trailer. */
export function checksumMatches(event: Buffer): boolean {
  return crc32(event.subarray(0, event.length - 4)) === event.readUInt32LE(event.length - 4);
}
