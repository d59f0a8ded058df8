import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseMySqlConfig } from '../../../plugins/sink-mysql/src/config.js';
import { parseMySqlUri, redactArgs, redactUri } from '../../../src/core/config/uri.js';
import { TidemarkError } from '../../../src/core/errors/index.js';

const invalid = (message: RegExp) => (error: unknown): boolean => {
  assert.ok(error instanceof TidemarkError, String(error));
  assert.equal(error.code, 'ErrUpstreamURIInvalid');
  assert.equal(error.retryable, false);
  assert.match(error.message, message);
  assert.doesNotMatch(error.message, /s3cret/, 'the password is never in a message');
  return true;
};

describe('upstream URI (parseMySqlUri)', () => {
  it('parses host, port, user, password and the database path', () => {
    assert.deepEqual(parseMySqlUri('mysql://rep:p%40ss@db.example.com:3307/shop'), {
      host: 'db.example.com',
      port: 3307,
      user: 'rep',
      password: 'p@ss',
      database: 'shop',
      tls: { mode: 'preferred' },
    });
    assert.deepEqual(parseMySqlUri('mysql://127.0.0.1'), { host: '127.0.0.1', port: 3306, user: 'root', password: '', tls: { mode: 'preferred' } });
    assert.equal(parseMySqlUri('mysql://u@[::1]:3306/').host, '::1');
  });

  it('takes ssl-mode with MySQL names (any case, _ or -) and the files', () => {
    for (const mode of ['disabled', 'preferred', 'required']) assert.equal(parseMySqlUri(`mysql://u@h/?ssl-mode=${mode.toUpperCase()}`).tls.mode, mode);
    assert.deepEqual(parseMySqlUri('mysql://u@h/?ssl-mode=VERIFY_IDENTITY&ssl-ca=/ca.pem&ssl-cert=/c.pem&ssl-key=/k.pem').tls, { mode: 'verify-identity', ca: '/ca.pem', cert: '/c.pem', key: '/k.pem' });
    assert.deepEqual(parseMySqlUri('mysql://u@h/?ssl-mode=verify-ca&ssl-ca=/ca.pem').tls, { mode: 'verify-ca', ca: '/ca.pem' });
    assert.deepEqual(parseMySqlUri('mysql://u@h/?ssl-mode=required&ssl-cert=/c.pem&ssl-key=/k.pem').tls, { mode: 'required', cert: '/c.pem', key: '/k.pem' });
  });

  it('defaults to preferred (MySQL), or verify-ca when ssl-ca is given', () => {
    assert.equal(parseMySqlUri('mysql://u@h:1/').tls.mode, 'preferred');
    assert.deepEqual(parseMySqlUri('mysql://u@h:1/?ssl-ca=/ca.pem').tls, { mode: 'verify-ca', ca: '/ca.pem' });
  });

  it('refuses unknown parameters, naming the allowed ones (ssl-mode misspelt is no longer ignored)', () => {
    assert.throws(() => parseMySqlUri('mysql://u:s3cret@h:3307/?sslmode=required'), invalid(/^invalid upstream URI "mysql:\/\/u:xxxxx@h:3307\/\?sslmode=required": unknown parameter "sslmode"; allowed: ssl-mode, ssl-ca, ssl-cert, ssl-key$/));
    assert.throws(() => parseMySqlUri('mysql://u:s3cret@h/?worker-count=4'), invalid(/unknown parameter "worker-count"/));
    // a caller may allow more (cdc diff takes a sink URI as --downstream)
    assert.equal(parseMySqlUri('mysql://u@h/?worker-count=4', 'downstream', ['worker-count']).host, 'h');
  });

  it('refuses a bad ssl-mode and the combinations whose meaning would surprise, with the fix', () => {
    assert.throws(() => parseMySqlUri('mysql://u:s3cret@h/?ssl-mode=on'), invalid(/invalid ssl-mode "on": one of disabled, preferred, required, verify-ca, verify-identity/));
    assert.throws(() => parseMySqlUri('mysql://u:s3cret@h/?ssl-mode=verify-identity'), invalid(/ssl-mode=verify-identity needs ssl-ca/));
    assert.throws(() => parseMySqlUri('mysql://u:s3cret@h/?ssl-mode=verify-ca'), invalid(/ssl-mode=verify-ca needs ssl-ca/));
    assert.throws(() => parseMySqlUri('mysql://u:s3cret@h/?ssl-mode=required&ssl-ca=/ca.pem'), invalid(/ssl-mode=required does not verify the server's certificate, so ssl-ca would be ignored: use ssl-mode=verify-ca or verify-identity/));
    assert.throws(() => parseMySqlUri('mysql://u:s3cret@h/?ssl-mode=disabled&ssl-ca=/ca.pem'), invalid(/ssl-mode=disabled makes no TLS connection/));
    assert.throws(() => parseMySqlUri('mysql://u:s3cret@h/?ssl-mode=required&ssl-cert=/c.pem'), invalid(/ssl-cert and ssl-key go together/));
    assert.throws(() => parseMySqlUri('mysql://u:s3cret@h/?ssl-ca='), invalid(/ssl-ca is empty/));
    assert.throws(() => parseMySqlUri('mysql://u:s3cret@h/?ssl-mode=required&ssl-mode=disabled'), invalid(/ssl-mode is given more than once/));
  });

  it('refuses what is not a mysql:// URI', () => {
    assert.throws(() => parseMySqlUri('127.0.0.1:3306'), invalid(/not a URI/));
    assert.throws(() => parseMySqlUri('http://u:s3cret@h/'), invalid(/the scheme is http:\/\/, not mysql:\/\//));
    assert.equal(parseMySqlUri('tidb://u@h:4000/', 'downstream').port, 4000);
  });

  it('redacts the password', () => {
    assert.equal(redactUri('mysql://u:s3cret@h:1/?ssl-mode=required'), 'mysql://u:xxxxx@h:1/?ssl-mode=required');
    // a secret in a parameter (the Kafka sink's SASL password) too
    assert.equal(redactUri('kafka://b:9092/t?sasl-user=u&sasl-password=s3cret&protocol=canal-json'), 'kafka://b:9092/t?sasl-user=u&sasl-password=xxxxx&protocol=canal-json');
    assert.deepEqual(redactArgs(['cdc', '--sink-uri', 'kafka://b:9092/t?sasl-password=s3cret&x=1']), ['cdc', '--sink-uri', 'kafka://b:9092/t?sasl-password=xxxxx&x=1']);
  });

  it('redacts the passwords of URI arguments, for the process title', () => {
    assert.deepEqual(redactArgs(['node', 'run.js', 'server', '--upstream', 'mysql://rep:s3cret@h:3306/?ssl-mode=required', '--sink-uri=mysql://u:p%40ss@d/']), [
      'node', 'run.js', 'server', '--upstream', 'mysql://rep:xxxxx@h:3306/?ssl-mode=required', '--sink-uri=mysql://u:xxxxx@d/',
    ]);
    assert.equal(redactArgs(['node', 'run.js', 'server', '--upstream', 'mysql://root@h:3306/', '--pd', 'http://127.0.0.1:2379']), undefined);
  });
});

describe('mysql sink URI ssl-mode (parseMySqlConfig)', () => {
  const ssl = (query: string) => parseMySqlConfig(new URL(`mysql://u:s3cret@h:3306/?${query}`)).ssl;
  const refuses = (query: string, message: RegExp): void =>
    assert.throws(() => ssl(query), (e: Error & { retryable?: boolean }) => message.test(e.message) && e.retryable === false && !e.message.includes('s3cret'));

  it('takes ssl-mode with the same meanings and defaults as the upstream', () => {
    assert.deepEqual(ssl(''), { mode: 'preferred' });
    assert.deepEqual(ssl('ssl-ca=/ca.pem'), { mode: 'verify-ca', ca: '/ca.pem' });
    assert.deepEqual(ssl('ssl-mode=verify-identity&ssl-ca=/ca.pem&ssl-cert=/c.pem&ssl-key=/k.pem'), { mode: 'verify-identity', ca: '/ca.pem', cert: '/c.pem', key: '/k.pem' });
    assert.deepEqual(ssl('ssl-mode=DISABLED'), { mode: 'disabled' });
  });

  it('refuses what the upstream refuses', () => {
    refuses('ssl-mode=strict', /invalid ssl-mode "strict" in mysql sink URI: one of disabled, preferred, required, verify-ca, verify-identity/);
    refuses('ssl-mode=verify-ca', /ssl-mode=verify-ca in mysql sink URI needs ssl-ca/);
    refuses('ssl-mode=preferred&ssl-ca=/ca.pem', /ssl-mode=preferred in mysql sink URI does not verify/);
    refuses('ssl-mode=disabled&ssl-cert=/c.pem&ssl-key=/k.pem', /ssl-mode=disabled in mysql sink URI makes no TLS connection/);
    refuses('ssl-key=/k.pem', /ssl-cert and ssl-key in mysql sink URI go together/);
    refuses('sslmode=required', /unknown parameter "sslmode" in mysql sink URI; allowed: .*ssl-mode, ssl-ca, ssl-cert, ssl-key/);
  });
});
