import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { checkServerIdentity, type ConnectionOptions as TlsConnectionOptions, type PeerCertificate } from 'node:tls';
import { TidemarkError } from '../../errors/index.js';
import type { TlsSettings } from '../../config/uri.js';
import { certificateProblem, describeCertificateProblem, isValidityProblem } from '../../errors/tls-verification.js';

/** The TLS files of a URI, read (PEM text); the paths stay for messages. */
export interface LoadedTls {
  readonly settings: TlsSettings;
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

const loaded = new Map<string, { at: number; value: LoadedTls }>();
/** Files are read again after this long, so that renewed certificates are taken up without a restart. */
const RELOAD_MS = 60_000;

/** Reads the files named by ssl-ca, ssl-cert and ssl-key (cached for a minute); an unreadable one is an ErrUpstreamURIInvalid naming it. */
export function loadTls(settings: TlsSettings, what = 'upstream'): LoadedTls {
  if (settings.mode === 'disabled') return { settings };
  const cacheKey = `${settings.ca ?? ''}\0${settings.cert ?? ''}\0${settings.key ?? ''}`;
  const hit = loaded.get(cacheKey);
  if (hit !== undefined && Date.now() - hit.at < RELOAD_MS) return { ...hit.value, settings };
  const read = (name: string, path: string | undefined): string | undefined => {
    if (path === undefined) return undefined;
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      throw new TidemarkError('ErrUpstreamURIInvalid', `cannot read ${name} "${path}" named in the ${what} URI: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
    }
  };
  const ca = read('ssl-ca', settings.ca);
  const cert = read('ssl-cert', settings.cert);
  const key = read('ssl-key', settings.key);
  const value: LoadedTls = { settings, ...(ca === undefined ? {} : { ca }), ...(cert === undefined ? {} : { cert }), ...(key === undefined ? {} : { key }) };
  loaded.set(cacheKey, { at: Date.now(), value });
  return value;
}

/** The PEM files given and whether the server's certificate is verified (verify-ca, verify-identity): what both clients share. */
function pemAndVerification(tls: LoadedTls): { ca?: string; cert?: string; key?: string; rejectUnauthorized: boolean } {
  return {
    ...(tls.ca === undefined ? {} : { ca: tls.ca }),
    ...(tls.cert === undefined ? {} : { cert: tls.cert }),
    ...(tls.key === undefined ? {} : { key: tls.key }),
    rejectUnauthorized: tls.settings.mode === 'verify-ca' || tls.settings.mode === 'verify-identity',
  };
}

/** Options for node:tls `connect` over an existing socket to `host`, with the verification ssl-mode asks for. */
export function tlsConnectOptions(tls: LoadedTls, host: string): TlsConnectionOptions {
  return {
    ...pemAndVerification(tls),
    // SNI takes host names only
    ...(isIP(host) === 0 ? { servername: host } : {}),
    checkServerIdentity: tls.settings.mode === 'verify-identity' ? (_name: string, cert: PeerCertificate) => checkServerIdentity(host, cert) : () => undefined,
  };
}

/** The `ssl` option of a mysql2 connection (mysql2 verifies with rejectUnauthorized and verifyIdentity). */
export function mysql2Ssl(tls: LoadedTls): Record<string, unknown> | undefined {
  if (tls.settings.mode === 'disabled') return undefined;
  return {
    ...pemAndVerification(tls),
    verifyIdentity: tls.settings.mode === 'verify-identity',
  };
}

/** MariaDB and MySQL refuse a plaintext login with these when require_secure_transport is on (MySQL 3159; MariaDB says so in a 1045 or 4151 message). */
function insecureTransportRefused(errno: number | undefined, message: string): boolean {
  return errno === 3159 || /insecure transport|require_secure_transport|secure transport/i.test(message);
}

export interface TlsTarget {
  readonly host: string;
  readonly port: number;
  readonly tls: TlsSettings;
  /** 'upstream', 'downstream': for messages. */
  readonly what?: string;
}

/**
 * Turns a failure to connect into a typed TLS error when TLS is what went wrong, naming what is wrong and the
 * fix; undefined for any other failure (the caller reports it as before). Never names the password.
 */
export function tlsErrorOf(error: unknown, target: TlsTarget): TidemarkError | undefined {
  if (error instanceof TidemarkError) return error.code.startsWith('ErrTLS') ? error : undefined;
  const e = error as { code?: string; errno?: number; message?: string } | undefined;
  const message = e?.message ?? String(error);
  const where = `the ${target.what ?? 'upstream'} ${target.host}:${target.port}`;
  const mode = target.tls.mode;
  if (e?.code === 'HANDSHAKE_NO_SSL_SUPPORT') {
    return new TidemarkError('ErrTLSUnavailable', `${where} offers no TLS, and ssl-mode=${mode} requires it: enable TLS on the server (ssl_cert, ssl_key) or lower ssl-mode`, { cause: error });
  }
  if (insecureTransportRefused(e?.errno, message)) {
    return new TidemarkError(
      'ErrTLSRequired',
      `${where} accepts only TLS connections (require_secure_transport) and this one was in plaintext (ssl-mode=${mode}): set ssl-mode=verify-identity (or verify-ca, required) with ssl-ca on the URI`,
      { cause: error },
    );
  }
  const code = certificateProblem(e?.code, message);
  if (code !== undefined) {
    const identity = code === 'ERR_TLS_CERT_ALTNAME_INVALID' ? ` ${target.host} (ssl-mode=verify-identity): use the name the certificate gives, or a certificate for ${target.host}` : '';
    const fix =
      isValidityProblem(code)
        ? ': renew the server certificate'
        : code === 'ERR_TLS_CERT_ALTNAME_INVALID'
          ? ''
          : `: give the CA that signed the server certificate in ssl-ca (now ${target.tls.ca ?? 'none'})`;
    return new TidemarkError('ErrTLSCertificate', `TLS to ${where} failed: ${describeCertificateProblem(code, 'the CA in ssl-ca')}${identity}${fix} (${message})`, { cause: error, details: { reason: code } });
  }
  if (e?.code === 'HANDSHAKE_SSL_ERROR' || /^ERR_SSL_|^ERR_TLS_/.test(e?.code ?? '') || /SSL routines|alert/i.test(message)) {
    return new TidemarkError('ErrTLSHandshake', `TLS handshake with ${where} failed: ${message}${/certificate required|bad certificate|unknown ca/i.test(message) ? ' (the server refused the client certificate: check ssl-cert and ssl-key)' : ''}`, { cause: error });
  }
  return undefined;
}
