import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { cachingSha2Password } from '../../../src/core/upstream/protocol/auth.js';
import { ProtocolConnection } from '../../../src/core/upstream/protocol/connection.js';
import { PacketReader, framePacket } from '../../../src/core/upstream/protocol/packet-reader.js';
import { makeCerts, type TestCerts } from '../../integration/tls/certs.js';

const CLIENT_SSL = 0x800;
const PASSWORD = 'sha2-Secret!';

interface Seen {
  sslRequested: boolean;
  /** What the client sent after the server asked for full authentication. */
  fullAuthPayload?: Buffer;
  fastAuthMatched?: boolean;
}

/**
 * A MySQL 8 server stand-in that speaks just the handshake: it offers TLS (or not) and caching_sha2_password,
 * upgrades to TLS after the SSL request, then does fast authentication (the scramble) or asks for full
 * authentication (the password itself, which a client may only send over TLS).
 */
class FakeServer {
  readonly seen: Seen[] = [];
  private server!: Server;
  port = 0;

  constructor(
    private readonly certs: TestCerts,
    private readonly mode: 'fast' | 'full',
    private readonly offerTls = true,
  ) {}

  async start(): Promise<void> {
    this.server = createServer((socket) => void this.serve(socket).catch(() => socket.destroy()));
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = (this.server.address() as { port: number }).port;
  }

  async stop(): Promise<void> {
    await new Promise((resolve) => this.server.close(resolve));
  }

  private async serve(plain: Socket): Promise<void> {
    const seen: Seen = { sslRequested: false };
    this.seen.push(seen);
    let socket: Socket = plain;
    const reader = new PacketReader();
    const queue: Buffer[] = [];
    let wake: (() => void) | undefined;
    const onData = (chunk: Buffer): void => {
      queue.push(...reader.push(chunk));
      wake?.();
    };
    const next = async (): Promise<Buffer> => {
      while (queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      return queue.shift()!;
    };
    let seq = 0;
    const send = (payload: Buffer): void => {
      socket.write(framePacket(payload, seq++));
    };
    // the client's first packet, read raw: after an SSL request the TLS handshake follows on the same bytes
    let raw = Buffer.alloc(0);
    const first = new Promise<Buffer>((resolve) => {
      const onRaw = (chunk: Buffer): void => {
        raw = Buffer.concat([raw, chunk]);
        if (raw.length < 4 || raw.length < 4 + raw.readUIntLE(0, 3)) return;
        plain.off('data', onRaw);
        plain.pause();
        const end = 4 + raw.readUIntLE(0, 3);
        if (raw.length > end) plain.unshift(raw.subarray(end));
        resolve(raw.subarray(0, end));
      };
      plain.on('data', onRaw);
    });
    const scramble = Buffer.from('abcdefghijklmnopqrst', 'latin1');
    const caps = 0x1 | 0x200 | 0x2000 | 0x8000 | 0x80000 | 0x200000 | (this.offerTls ? CLIENT_SSL : 0);
    const hello = Buffer.concat([
      Buffer.from([10]),
      Buffer.from('8.0.36-fake\0', 'latin1'),
      Buffer.from([7, 0, 0, 0]),
      scramble.subarray(0, 8),
      Buffer.from([0]),
      Buffer.from([caps & 0xff, (caps >> 8) & 0xff, 45, 2, 0, (caps >> 16) & 0xff, (caps >> 24) & 0xff, 21]),
      Buffer.alloc(10),
      scramble.subarray(8),
      Buffer.from([0]),
      Buffer.from('caching_sha2_password\0', 'latin1'),
    ]);
    send(hello);
    const packet = await first;
    let response = packet.subarray(4);
    seq = packet[3] + 1;
    if ((response.readUInt32LE(0) & CLIENT_SSL) !== 0 && response.length === 32) {
      seen.sslRequested = true;
      const { cert, key } = { cert: readFileSync(join(this.certs.dir, 'good-cert.pem')), key: readFileSync(join(this.certs.dir, 'server-key.pem')) };
      socket = new TLSSocket(plain, { isServer: true, cert, key });
      socket.on('data', onData);
      plain.resume();
      response = await next();
      seq = reader.sequence + 1;
    } else {
      plain.on('data', onData);
      plain.resume();
    }
    const userEnd = response.indexOf(0, 32);
    const authLength = response[userEnd + 1];
    const auth = response.subarray(userEnd + 2, userEnd + 2 + authLength);
    if (this.mode === 'fast') {
      seen.fastAuthMatched = auth.equals(cachingSha2Password(PASSWORD, scramble));
      send(Buffer.from([0x01, 0x03]));
    } else {
      send(Buffer.from([0x01, 0x04]));
      const full = await next();
      seq = reader.sequence + 1;
      seen.fullAuthPayload = full;
      if (full.length === 1 && full[0] === 0x02) {
        socket.destroy(); // asked for the RSA key: not part of this test
        return;
      }
    }
    send(Buffer.from([0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00]));
  }
}

describe('replication client: TLS upgrade and caching_sha2_password over TLS (a MySQL 8 stand-in)', () => {
  let dir: string;
  let certs: TestCerts;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'tidemark-proto-tls-'));
    certs = makeCerts(dir);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const open = (port: number, mode: string, extra: object = {}) =>
    ProtocolConnection.open({ host: '127.0.0.1', port, user: 'rep', password: PASSWORD, tls: mode === 'verify-identity' || mode === 'verify-ca' ? { mode, ca: certs.ca } : { mode: mode as 'required' }, ...extra });

  it('sends the SSL request, upgrades, and answers fast authentication with the scramble, over TLS', async () => {
    const server = new FakeServer(certs, 'fast');
    await server.start();
    try {
      const conn = await open(server.port, 'verify-identity');
      assert.match(conn.cipher ?? '', /^TLS_/);
      conn.close();
      assert.deepEqual(server.seen, [{ sslRequested: true, fastAuthMatched: true }]);
    } finally {
      await server.stop();
    }
  });

  it('full authentication over TLS sends the password itself (NUL-terminated), never outside TLS', async () => {
    const server = new FakeServer(certs, 'full');
    await server.start();
    try {
      const conn = await open(server.port, 'verify-ca');
      conn.close();
      assert.equal(server.seen[0]?.sslRequested, true);
      assert.equal(server.seen[0]?.fullAuthPayload?.toString('utf8'), `${PASSWORD}\0`);
      // a probe over TLS it does not verify never sends it
      await assert.rejects(open(server.port, 'required', { noCleartext: true }), { code: 'ErrTLSHandshake', message: /asked for the password in clear; not sent/ });
      assert.equal(server.seen[1]?.fullAuthPayload, undefined);
    } finally {
      await server.stop();
    }
  });

  it('without TLS on the server: required fails with ErrTLSUnavailable, preferred goes on in plaintext', async () => {
    const server = new FakeServer(certs, 'fast', false);
    await server.start();
    try {
      await assert.rejects(open(server.port, 'required'), { code: 'ErrTLSUnavailable', retryable: false, message: /the upstream 127\.0\.0\.1:\d+ offers no TLS, and ssl-mode=required requires it/ });
      const conn = await open(server.port, 'preferred');
      assert.equal(conn.cipher, undefined);
      conn.close();
      assert.deepEqual(server.seen.at(-1), { sslRequested: false, fastAuthMatched: true });
    } finally {
      await server.stop();
    }
  });

  it('full authentication without TLS asks for the server key, never sends the password', async () => {
    const server = new FakeServer(certs, 'full', false);
    await server.start();
    try {
      await assert.rejects(open(server.port, 'preferred'));
      assert.deepEqual(server.seen[0]?.fullAuthPayload, Buffer.from([0x02]));
    } finally {
      await server.stop();
    }
  });
});
