import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { IncomingMessage } from 'node:http';
import { describe, it } from 'node:test';
import { ApiAuth, basicAuthorization, hashPassword, parsePasswordHash, verifyPassword } from '../../../src/core/api/auth.js';
import { resolveServerConfig } from '../../../src/core/config/server-config.js';
import { redactSecretFlags } from '../../../src/cli/base-command.js';
import { isLoopback } from '../../../src/core/server/server.js';
import { CDC_BIN } from '../../helpers/cdc-process.js';

const fast = { N: 1024, r: 8, p: 1 };
const request = (method: string, authorization?: string): IncomingMessage =>
  ({ method, url: '/api/v2/changefeeds', headers: authorization === undefined ? {} : { authorization } }) as unknown as IncomingMessage;

describe('API passwords (scrypt)', () => {
  it('hashes with a fresh salt each time and verifies only the same password', async () => {
    const a = await hashPassword('s3cret!', fast);
    const b = await hashPassword('s3cret!', fast);
    assert.match(a, /^scrypt\$1024\$8\$1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    assert.notEqual(a, b, 'a new salt per hash');
    assert.ok(!a.includes('s3cret!'));
    assert.equal(await verifyPassword('s3cret!', parsePasswordHash('u', a)), true);
    assert.equal(await verifyPassword('s3cret', parsePasswordHash('u', a)), false);
    assert.equal(await verifyPassword('', parsePasswordHash('u', b)), false);
    // the default cost
    assert.match(await hashPassword('x'), /^scrypt\$32768\$8\$1\$/);
    await assert.rejects(hashPassword(''), { code: 'ErrInvalidArgument' });
  });

  it('refuses a malformed stored hash naming the user, never quoting it', () => {
    assert.throws(() => parsePasswordHash('admin', 'plaintext-password'), (e: Error & { code?: string }) => e.code === 'ErrConfigInvalid' && /API user "admin"/.test(e.message) && !e.message.includes('plaintext-password'));
    assert.throws(() => parsePasswordHash('admin', 'scrypt$1000$8$1$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaA=='), /N must be a power of two/);
  });

  it('needs a user for writes only (by default), checks it, and leaves status, health and metrics open', async () => {
    const auth = new ApiAuth({ users: { admin: await hashPassword('pw-1', fast) }, reads: false });
    assert.equal(auth.required('POST', '/api/v2/changefeeds'), true);
    assert.equal(auth.required('DELETE', '/api/v2/changefeeds/:id'), true);
    assert.equal(auth.required('GET', '/api/v2/changefeeds'), false);
    const reads = new ApiAuth({ users: { admin: await hashPassword('pw-1', fast) }, reads: true });
    assert.equal(reads.required('GET', '/api/v2/changefeeds'), true);
    for (const open of ['/api/v2/status', '/api/v2/health', '/metrics']) assert.equal(reads.required('GET', open), false, open);
    assert.equal(new ApiAuth({ users: {}, reads: true }).required('POST', '/api/v2/changefeeds'), false, 'no users: no authentication');

    assert.equal(await auth.check(request('POST', basicAuthorization('admin', 'pw-1'))), 'admin');
    await assert.rejects(auth.check(request('POST')), { code: 'ErrUnauthorized', message: /POST \/api\/v2\/changefeeds needs an API user/ });
    await assert.rejects(auth.check(request('POST', basicAuthorization('admin', 'pw-2'))), (e: Error & { code?: string }) => e.code === 'ErrUnauthorized' && !e.message.includes('pw-2'));
    await assert.rejects(auth.check(request('POST', basicAuthorization('nobody', 'pw-1'))), { code: 'ErrUnauthorized', message: /API user "nobody": unknown user or wrong password/ });
    await assert.rejects(auth.check(request('POST', 'Bearer abc')), { code: 'ErrUnauthorized' });
    await assert.rejects(auth.check(request('POST', 'Basic !!!')), { code: 'ErrUnauthorized' });
    // a password with a colon is the part after the first one
    const colon = new ApiAuth({ users: { ops: await hashPassword('a:b:c', fast) }, reads: false });
    assert.equal(await colon.check(request('POST', basicAuthorization('ops', 'a:b:c'))), 'ops');
  });
});

describe('server [security] config', () => {
  it('takes the flags over the file key by key', async () => {
    const hash = await hashPassword('x', fast);
    const config = resolveServerConfig(
      { security: { 'ca-path': '/file/ca.pem', 'cert-allowed-cn': ['a'], 'client-user-list': { admin: hash } } },
      { security: { 'ca-path': '/flag/ca.pem', 'cert-path': '/c.pem', 'key-path': '/k.pem', 'cert-allowed-cn': undefined } },
    );
    assert.equal(config.security['ca-path'], '/flag/ca.pem');
    assert.deepEqual(config.security['cert-allowed-cn'], ['a']);
    assert.deepEqual(config.security['client-user-list'], { admin: hash });
    assert.equal(config.security['client-auth-reads'], false);
    assert.deepEqual(resolveServerConfig({}, {}).security, { 'cert-allowed-cn': [], 'client-user-list': {}, 'client-auth-reads': false });
  });

  it('names unknown keys of [security] and impossible combinations', () => {
    assert.throws(() => resolveServerConfig({ security: { 'ca-file': 'x' } } as never, {}, 'server.toml'), {
      code: 'ErrConfigUnknownKey',
      message: /unknown key "security\.ca-file" in server\.toml; allowed in \[security\]: ca-path, cert-path, key-path, cert-allowed-cn, etcd-user/,
    });
    assert.throws(() => resolveServerConfig({}, { security: { 'cert-path': '/c.pem' } }), { code: 'ErrConfigInvalid', message: /--cert .* and --key .* go together; got only --cert/ });
    assert.throws(() => resolveServerConfig({}, { security: { 'cert-allowed-cn': ['x'] } }), { code: 'ErrConfigInvalid', message: /--cert-allowed-cn .* needs --ca, --cert and --key/ });
    assert.throws(() => resolveServerConfig({}, { security: { 'etcd-user': 'cdc' } }), { code: 'ErrConfigInvalid', message: /the etcd user "cdc" needs a password: set TIDEMARK_ETCD_PASSWORD/ });
    assert.throws(() => resolveServerConfig({}, { security: { 'etcd-password': 'hunter2' } }), (e: Error & { code?: string }) => e.code === 'ErrConfigInvalid' && /needs --etcd-user/.test(e.message) && !e.message.includes('hunter2'));
  });

  it('never quotes a secret in an error: a plaintext password where a hash belongs', () => {
    assert.throws(
      () => resolveServerConfig({ security: { 'client-user-list': { admin: 'my-plain-password' } } }, {}, 'server.toml'),
      (e: Error & { code?: string }) =>
        e.code === 'ErrConfigInvalid' && /"security\.client-user-list\.admin" in server\.toml: must be a password hash made by `cdc hash-password`/.test(e.message) && /not shown: a secret/.test(e.message) && !e.message.includes('my-plain-password'),
    );
    assert.throws(() => resolveServerConfig({ security: { 'etcd-user': 'u', 'etcd-password': 42 } } as never, {}), (e: Error) => /not shown: a secret/.test(e.message) && !e.message.includes('42'));
  });

  it('keeps passwords given as flags out of the process title', () => {
    assert.deepEqual(redactSecretFlags(['node', 'cdc', 'server', '--etcd-password', 'pw1', '--password=pw2', '--user', 'admin']), ['node', 'cdc', 'server', '--etcd-password', 'xxxxx', '--password=xxxxx', '--user', 'admin']);
    const plain = ['node', 'cdc', 'capture', 'list'];
    assert.equal(redactSecretFlags(plain), plain);
  });
});

describe('loopback addresses (no warning without TLS)', () => {
  it('tells loopback hosts from the others', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]']) assert.equal(isLoopback(host), true, host);
    for (const host of ['0.0.0.0', '10.0.0.7', '::', 'db.example.com', '128.0.0.1']) assert.equal(isLoopback(host), false, host);
  });
});

describe('cdc hash-password (the built CLI)', () => {
  it('hashes the password from stdin into a line the server config takes, never echoing it', async () => {
    const child = promisify(execFile)(process.execPath, [CDC_BIN, 'hash-password', '--user', 'ops'], { env: { ...process.env, TIDEMARK_PASSWORD: undefined } });
    child.child.stdin?.end('pipe-d pass\n');
    const { stdout, stderr } = await child;
    assert.ok(!stdout.includes('pipe-d pass') && !stderr.includes('pipe-d pass'));
    const m = /^"ops" = "(scrypt\$[^"]+)"\n$/.exec(stdout);
    assert.ok(m !== null, stdout);
    const config = resolveServerConfig({ security: { 'client-user-list': { ops: m[1] } } }, {});
    assert.equal(await verifyPassword('pipe-d pass', parsePasswordHash('ops', config.security['client-user-list']['ops'])), true);
    assert.equal(await verifyPassword('pipe-d pass\n', parsePasswordHash('ops', m[1])), false);
  });
});
