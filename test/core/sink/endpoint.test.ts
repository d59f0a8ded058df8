import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SinkEndpoint, sinkError } from '../../../src/core/sink/endpoint.js';
import type { SinkContext, SinkFactory } from '../../../src/core/sink/api.js';
import { TidemarkError } from '../../../src/core/errors/index.js';

/** A factory whose parseConfig and create fail as told (pure logic: no service behind it). */
function factory(create: () => Promise<never>): SinkFactory<{ n: number }> & { parsed: number } {
  const f = {
    schemes: ['x'],
    parsed: 0,
    parseConfig(uri: URL) {
      f.parsed++;
      const n = Number(uri.searchParams.get('n') ?? '1');
      if (!Number.isInteger(n)) throw new Error(`invalid n "${uri.searchParams.get('n')}": expected an integer`);
      return { n };
    },
    create,
  };
  return f;
}
const ctx = { signal: new AbortController().signal, changefeedId: 'cf' } as unknown as SinkContext;

describe('SinkEndpoint (a changefeed\'s sink: plugin, URI and config parsed once)', () => {
  it('parses once; a bad URI or parameter is ErrSinkURIInvalid naming the URI without its password', () => {
    const f = factory(() => Promise.reject(new Error('unused')));
    const endpoint = SinkEndpoint.of(f, 'x://user:secret@h/?n=3');
    assert.deepEqual(endpoint.config, { n: 3 });
    assert.equal(endpoint.scheme, 'x');
    assert.equal(f.parsed, 1);
    assert.throws(() => SinkEndpoint.of(f, 'x://user:secret@h/?n=abc'), (e: unknown) => e instanceof TidemarkError && e.code === 'ErrSinkURIInvalid' && /invalid n "abc"/.test(e.message) && !e.message.includes('secret'));
    assert.throws(() => SinkEndpoint.of(f, 'no uri'), { code: 'ErrSinkURIInvalid', message: /not a URI/ });
  });

  it('open: a plugin\'s plain error becomes ErrSinkFailed (retryable) or ErrSinkRejected (retryable: false), naming the sink', async () => {
    const failing = SinkEndpoint.of(factory(() => Promise.reject(new Error('connection refused'))), 'x://user:secret@h/');
    await assert.rejects(failing.open(ctx), (e: unknown) => e instanceof TidemarkError && e.code === 'ErrSinkFailed' && e.retryable && /^cannot open the sink x:\/\/user:xxxxx@h\/: connection refused$/.test(e.message));
    const refused = SinkEndpoint.of(factory(() => Promise.reject(Object.assign(new Error('access denied'), { retryable: false }))), 'x://h/');
    await assert.rejects(refused.open(ctx), { code: 'ErrSinkRejected', retryable: false });
    const typed = new TidemarkError('ErrSinkURIInvalid', 'as the plugin said');
    assert.equal(sinkError(typed, 'ignored'), typed);
  });
});
