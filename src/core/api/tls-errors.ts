import { TidemarkError } from '../errors/index.js';
import { certificateProblem, describeCertificateProblem, isValidityProblem } from '../errors/tls-verification.js';

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
  const code = certificateProblem(rawCode, message);
  if (code !== undefined) {
    const ca = context.caPath === undefined ? `the system's CAs (no ${context.caFlag})` : `${context.caFlag} ${context.caPath}`;
    const fix =
      isValidityProblem(code)
        ? 'renew the server certificate'
        : code === 'ERR_TLS_CERT_ALTNAME_INVALID'
          ? 'connect to a name or IP address the certificate gives, or give the server a certificate for this one'
          : `give the CA that signed the server certificate with ${context.caFlag}`;
    return new TidemarkError('ErrTLSCertificate', `TLS to ${context.where} failed: ${describeCertificateProblem(code, ca)}${code === 'ERR_TLS_CERT_ALTNAME_INVALID' ? ' connected to' : ''}: ${fix}`, {
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
