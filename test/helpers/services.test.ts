import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, it } from 'node:test';
import { requireService, serviceAddress } from './services.js';

/** A loopback port with nothing listening on it. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('requireService', () => {
  it('fails with the service, its address, the variable and the command that starts it', async () => {
    const port = await closedPort();
    const saved = process.env['TIDEMARK_UPSTREAM_ADDR'];
    process.env['TIDEMARK_UPSTREAM_ADDR'] = `127.0.0.1:${port}`;
    try {
      await assert.rejects(requireService('upstream', 1000), (error: Error) => {
        assert.match(error.message, new RegExp(`upstream MariaDB \\(binlog on\\) is not reachable at 127\\.0\\.0\\.1:${port}`));
        assert.match(error.message, /ECONNREFUSED/);
        assert.match(error.message, /TIDEMARK_UPSTREAM_ADDR/);
        assert.match(error.message, /bash scripts\/services\.sh up upstream/);
        return true;
      });
    } finally {
      if (saved === undefined) delete process.env['TIDEMARK_UPSTREAM_ADDR'];
      else process.env['TIDEMARK_UPSTREAM_ADDR'] = saved;
    }
  });

  it('rejects an address that is not host:port', () => {
    process.env['TIDEMARK_KAFKA_ADDR'] = 'localhost';
    try {
      assert.throws(() => serviceAddress('kafka'), /TIDEMARK_KAFKA_ADDR="localhost" is not a host:port address/);
    } finally {
      delete process.env['TIDEMARK_KAFKA_ADDR'];
    }
  });
});
