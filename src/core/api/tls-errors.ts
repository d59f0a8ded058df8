import { TidemarkError } from '../errors/index.js';

/** OpenSSL verification results (node:tls codes) and what they mean for whoever connects. */
const PROBLEMS: Readonly<Record<string, string>> = {
  CERT_HAS_EXPIRED: 'the server certificate has expired',
  CERT_NOT_YET_VALID: 'the server certificate is not valid yet (check the clocks)',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the server certificate is not signed by the CA given (wrong CA?)',
  UNABLE_TO_GET_ISSUER_CERT: 'the server certificate is not signed by the CA given (wrong CA?)',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the server certificate is not signed by the CA given (wrong CA?)',
  SELF_SIGNED_CERT_IN_CHAIN: 'the server certificate is not signed by the CA given (wrong CA?)',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the server certificate is self-signed, not signed by the CA given (wrong CA?)',
  CERT_SIGNATURE_FAILURE: 'the server certificate signature does not verify against the CA given (wrong CA?)',
  ERR_TLS_CERT_ALTNAME_INVALID: 'the server certificate does not name the host connected to',
};

/** The same, recognised from a message (gRPC wraps the TLS error in its own text). */
const MESSAGES: readonly [RegExp, string][] = [
  [/certificate has expired/i, 'CERT_HAS_EXPIRED'],
  [/certificate is not yet valid/i, 'CERT_NOT_YET_VALID'],
  [/unable to verify the first certificate/i, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
  [/unable to get (local )?issuer certificate/i, 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'],
  [/self[- ]signed certificate in certificate chain/i, 'SELF_SIGNED_CERT_IN_CHAIN'],
  [/self[- ]signed certificate/i, 'DEPTH_ZERO_SELF_SIGNED_CERT'],
  [/certificate signature failure/i, 'CERT_SIGNATURE_FAILURE'],
  [/Hostname\/IP does not match certificate's altnames|does not match certificate|ERR_TLS_CERT_ALTNAME_INVALID/i, 'ERR_TLS_CERT_ALTNAME_INVALID'],
];

export interface TlsErrorContext {
  /** What was connected to, e.g. `the cdc server at https://127.0.0.1:8300`, `etcd at https://127.0.0.1:2379`. */
  readonly where: string;
  /** The CA the client trusted (a path), for the message; undefined: the system's roots. */
  readonly caPath?: string | undefined;
  /** The flag that gives the CA, e.g. `--ca`. */
  readonly caFlag: string;
  /** The client used TLS (https, a TLS channel). */
  readonly secure: boolean;
}

function codeAndMessage(error: unknown): { code: string | undefined; message: string } {
  // fetch-like errors keep the socket's error as `cause`
  let e = error as { code?: unknown; message?: unknown; cause?: unknown } | undefined;
  const messages: string[] = [];
  let code: string | undefined;
  for (let depth = 0; e !== undefined && e !== null && depth < 4; depth++) {
    if (typeof e.message === 'string') messages.push(e.message);
    if (code === undefined && typeof e.code === 'string' && e.code !== 'ABORT_ERR') code = e.code;
    e = e.cause as typeof e;
  }
  return { code, message: messages.join(': ') || String(error) };
}

/**
 * A failure to connect turned into a typed TLS error naming what is wrong and the fix, or undefined when TLS is
 * not what failed. Messages never hold a key or a password (only paths and the peer's address).
 */
export function clusterTlsError(error: unknown, context: TlsErrorContext): TidemarkError | undefined {
  if (error instanceof TidemarkError) return error.code.startsWith('ErrTLS') ? error : undefined;
  const { code: rawCode, message } = codeAndMessage(error);
  let code = rawCode !== undefined && rawCode in PROBLEMS ? rawCode : undefined;
  code ??= MESSAGES.find(([re]) => re.test(message))?.[1];
  if (code !== undefined) {
    const ca = context.caPath === undefined ? `the system's CAs (no ${context.caFlag})` : `${context.caFlag} ${context.caPath}`;
    const fix =
      code === 'CERT_HAS_EXPIRED' || code === 'CERT_NOT_YET_VALID'
        ? 'renew the server certificate'
        : code === 'ERR_TLS_CERT_ALTNAME_INVALID'
          ? 'connect to a name or IP address the certificate gives, or give the server a certificate for this one'
          : `give the CA that signed the server certificate with ${context.caFlag}`;
    return new TidemarkError('ErrTLSCertificate', `TLS to ${context.where} failed: ${PROBLEMS[code].replace('the CA given', ca)}: ${fix}`, {
      details: { reason: code },
      cause: error,
    });
  }
  if (context.secure && (/wrong version number|packet length too long|unknown protocol|EPROTO/i.test(message) || rawCode === 'EPROTO' || rawCode === 'ERR_SSL_WRONG_VERSION_NUMBER')) {
    return new TidemarkError('ErrTLSUnavailable', `${context.where} does not speak TLS: use http:// (or drop the TLS settings), or give that server --cert and --key`, { cause: error });
  }
  if (/certificate required|bad certificate|unknown ca|certificate unknown|handshake failure|alert/i.test(message) || /^ERR_SSL_/.test(rawCode ?? '')) {
    return new TidemarkError('ErrTLSHandshake', `TLS handshake with ${context.where} failed: ${message} (the server may want a client certificate signed by its CA: check --cert and --key)`, {
      cause: error,
    });
  }
  return undefined;
}
