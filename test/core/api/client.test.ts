import assert from 'node:assert/strict';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ApiClient } from '../../../src/core/api/client.js';
import { TidemarkError } from '../../../src/core/errors/index.js';

/** The CLI's API client tells a server that does not answer in time from one it cannot reach. */
describe('ApiClient errors', () => {
  let slow: Server;
  let slowUrl: string;
  const held: ServerResponse[] = [];

  before(async () => {
    // accepts every request and answers none (a server busy with a long create)
    slow = createServer((_req, res) => void held.push(res));
    await new Promise<void>((resolve) => slow.listen(0, '127.0.0.1', resolve));
    slowUrl = `http://127.0.0.1:${(slow.address() as AddressInfo).port}`;
  });
  after(async () => {
    for (const res of held) res.destroy();
    await new Promise((resolve) => slow.close(resolve));
  });

  it('a server that accepts and does not answer in time: ErrTimeout naming the request and the time allowed', async () => {
    const error = await new ApiClient(slowUrl, 300).createChangefeed({ changefeed_id: 'x' }).then(
      () => assert.fail('no answer must not resolve'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof TidemarkError);
    assert.equal(error.code, 'ErrTimeout');
    assert.match(error.message, /did not answer POST \/api\/v2\/changefeeds within 0\.3 s/);
    assert.match(error.hint ?? '', /may still complete/);
  });

  it('nothing listening: ErrServiceUnreachable naming the server', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const error = await new ApiClient(`http://127.0.0.1:${port}`, 2000).status().then(
      () => assert.fail('a closed port must not resolve'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof TidemarkError);
    assert.equal(error.code, 'ErrServiceUnreachable');
    assert.match(error.message, new RegExp(`cannot reach the cdc server at http://127.0.0.1:${port} \\(ECONNREFUSED\\)`));
  });
});
