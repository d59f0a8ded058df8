import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Upstream } from '../../../src/core/upstream/upstream.js';

describe('Upstream: one object per upstream URI', () => {
  it('is made once per URI and shared; parses it once; names it without its password', () => {
    const uri = 'mysql://repl:s3cret@db.example:3307/?ssl-mode=required';
    const upstream = Upstream.of(uri);
    assert.equal(Upstream.of(uri), upstream, 'the same object for the same URI');
    assert.equal(upstream.target, Upstream.of(uri).target, 'parsed once');
    assert.deepEqual([upstream.target.host, upstream.target.port, upstream.target.user, upstream.target.tls.mode], ['db.example', 3307, 'repl', 'required']);
    assert.equal(upstream.shown, 'mysql://repl:xxxxx@db.example:3307/?ssl-mode=required');
    assert.notEqual(Upstream.of('mysql://repl:s3cret@db.example:3308/'), upstream);
  });

  it('files changefeeds of one server under one id: derived from host and port, not from the credentials', () => {
    const a = Upstream.of('mysql://a:x@10.0.0.1:3306/');
    assert.match(a.id, /^[0-9a-f]{16}$/);
    assert.equal(Upstream.of('mysql://b:y@10.0.0.1:3306/?ssl-mode=disabled').id, a.id);
    assert.notEqual(Upstream.of('mysql://a:x@10.0.0.1:3307/').id, a.id);
  });

  it('gives binlog reader options with the replica server id asked for', () => {
    const options = Upstream.of('mysql://r:p@h:3307/').readerOptions('mysql-bin', 1_234_567);
    assert.deepEqual([options.host, options.port, options.user, options.password, options.serverId, options.basename], ['h', 3307, 'r', 'p', 1_234_567, 'mysql-bin']);
  });

  it('refuses a bad URI or an unknown parameter, naming it, before anything is connected', () => {
    assert.throws(() => Upstream.of('mysql://u@h:3307/?sslmode=required'), { code: 'ErrUpstreamURIInvalid', message: /sslmode/ });
    assert.throws(() => Upstream.of('127.0.0.1:3306'), { code: 'ErrUpstreamURIInvalid', message: /not a URI/ });
  });

  it('turns a failed read into ErrUpstreamUnreachable naming what and the URI without its password', async () => {
    const upstream = Upstream.of('mysql://u:s3cret@127.0.0.1:1/');
    await assert.rejects(
      upstream.with('list the tables', () => Promise.resolve(1), { connectTimeout: 2000 }),
      (e: Error & { code?: string }) => e.code === 'ErrUpstreamUnreachable' && /^cannot list the tables of the upstream mysql:\/\/u:xxxxx@127\.0\.0\.1:1\/: /.test(e.message) && !e.message.includes('s3cret'),
    );
  });
});
