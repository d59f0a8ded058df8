import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Certificates made with openssl for the TLS tests, in `dir`:
 * - ca.pem / ca-key.pem: the test CA; other-ca.pem: another CA (a "wrong CA" for the client);
 * - good-cert.pem: the server's, for 127.0.0.1 and localhost; expired-cert.pem: the same names, expired in 2020;
 *   wronghost-cert.pem: valid, but for wrong.example.com only; all three on server-key.pem;
 * - server-cert.pem: what the servers load (a copy of one of the three; `useServerCert` swaps it, then FLUSH SSL);
 * - client-cert.pem / client-key.pem: a client certificate (CN tidemark-client) signed by the CA;
 * - for the cluster's own TLS (cdc server --ca --cert --key --cert-allowed-cn): capture-cert.pem / capture-key.pem
 *   (CN tidemark-capture, for 127.0.0.1 and localhost, server and client use), intruder-cert.pem / intruder-key.pem
 *   (CN intruder, signed by the CA), expired-client-cert.pem (CN tidemark-client, expired in 2020) and
 *   foreign-client-cert.pem (CN tidemark-client, signed by the other CA), both on client-key.pem.
 */
export interface TestCerts {
  readonly dir: string;
  readonly ca: string;
  readonly otherCa: string;
  readonly clientCert: string;
  readonly clientKey: string;
  readonly captureCert: string;
  readonly captureKey: string;
  readonly intruderCert: string;
  readonly intruderKey: string;
  readonly expiredClientCert: string;
  readonly foreignClientCert: string;
  /** expired-cert.pem and wronghost-cert.pem, on server-key.pem. */
  readonly expiredServerCert: string;
  readonly wrongHostCert: string;
  readonly serverKey: string;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

export function makeCerts(dir: string): TestCerts {
  mkdirSync(join(dir, 'newcerts'), { recursive: true });
  writeFileSync(join(dir, 'index.txt'), '');
  writeFileSync(join(dir, 'serial'), '1000\n');
  writeFileSync(
    join(dir, 'ca.cnf'),
    [
      '[ ca ]',
      'default_ca = test_ca',
      '[ test_ca ]',
      `dir = ${dir}`,
      'database = $dir/index.txt',
      'new_certs_dir = $dir/newcerts',
      'certificate = $dir/ca.pem',
      'private_key = $dir/ca-key.pem',
      'serial = $dir/serial',
      'default_md = sha256',
      'policy = policy_any',
      'unique_subject = no',
      'copy_extensions = none',
      '[ policy_any ]',
      'commonName = supplied',
      '[ server_ip ]',
      'subjectAltName = IP:127.0.0.1,DNS:localhost',
      'basicConstraints = CA:FALSE',
      '[ server_wrong ]',
      'subjectAltName = DNS:wrong.example.com',
      'basicConstraints = CA:FALSE',
      '[ client ]',
      'basicConstraints = CA:FALSE',
      'extendedKeyUsage = clientAuth',
      '[ capture ]',
      'subjectAltName = IP:127.0.0.1,DNS:localhost',
      'basicConstraints = CA:FALSE',
      'extendedKeyUsage = serverAuth, clientAuth',
      '',
    ].join('\n'),
  );
  const ca = (name: string, cn: string): void =>
    openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '3650', '-subj', `/CN=${cn}`, '-addext', 'basicConstraints=critical,CA:TRUE', '-keyout', `${name}-key.pem`, '-out', `${name}.pem`]);
  ca('ca', 'Tidemark test CA');
  ca('other-ca', 'Some other CA');
  openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=127.0.0.1', '-keyout', 'server-key.pem', '-out', 'server.csr']);
  const sign = (csr: string, out: string, extensions: string, dates: string[]): void =>
    openssl(dir, ['ca', '-batch', '-config', 'ca.cnf', '-notext', '-in', csr, '-out', out, '-extensions', extensions, ...dates]);
  sign('server.csr', 'good-cert.pem', 'server_ip', ['-days', '825']);
  sign('server.csr', 'expired-cert.pem', 'server_ip', ['-startdate', '20200101000000Z', '-enddate', '20200201000000Z']);
  openssl(dir, ['req', '-new', '-key', 'server-key.pem', '-subj', '/CN=wrong.example.com', '-out', 'wrong.csr']);
  sign('wrong.csr', 'wronghost-cert.pem', 'server_wrong', ['-days', '825']);
  openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=tidemark-client', '-keyout', 'client-key.pem', '-out', 'client.csr']);
  sign('client.csr', 'client-cert.pem', 'client', ['-days', '825']);
  sign('client.csr', 'expired-client-cert.pem', 'client', ['-startdate', '20200101000000Z', '-enddate', '20200201000000Z']);
  openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=tidemark-capture', '-keyout', 'capture-key.pem', '-out', 'capture.csr']);
  sign('capture.csr', 'capture-cert.pem', 'capture', ['-days', '825']);
  openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=intruder', '-keyout', 'intruder-key.pem', '-out', 'intruder.csr']);
  sign('intruder.csr', 'intruder-cert.pem', 'client', ['-days', '825']);
  writeFileSync(join(dir, 'client-ext.cnf'), 'basicConstraints = CA:FALSE\nextendedKeyUsage = clientAuth\n');
  openssl(dir, ['x509', '-req', '-in', 'client.csr', '-CA', 'other-ca.pem', '-CAkey', 'other-ca-key.pem', '-CAcreateserial', '-days', '825', '-extfile', 'client-ext.cnf', '-out', 'foreign-client-cert.pem']);
  useServerCert(dir, 'good');
  return {
    dir,
    ca: join(dir, 'ca.pem'),
    otherCa: join(dir, 'other-ca.pem'),
    clientCert: join(dir, 'client-cert.pem'),
    clientKey: join(dir, 'client-key.pem'),
    captureCert: join(dir, 'capture-cert.pem'),
    captureKey: join(dir, 'capture-key.pem'),
    intruderCert: join(dir, 'intruder-cert.pem'),
    intruderKey: join(dir, 'intruder-key.pem'),
    expiredClientCert: join(dir, 'expired-client-cert.pem'),
    foreignClientCert: join(dir, 'foreign-client-cert.pem'),
    expiredServerCert: join(dir, 'expired-cert.pem'),
    wrongHostCert: join(dir, 'wronghost-cert.pem'),
    serverKey: join(dir, 'server-key.pem'),
  };
}

/** Makes the servers' certificate file the good, expired or wrong-host one (the servers take it at FLUSH SSL). */
export function useServerCert(dir: string, which: 'good' | 'expired' | 'wronghost'): void {
  copyFileSync(join(dir, `${which}-cert.pem`), join(dir, 'server-cert.pem'));
}
