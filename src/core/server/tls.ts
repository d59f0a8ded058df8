import { readFileSync } from 'node:fs';
import type { TLSSocket, TlsOptions } from 'node:tls';
import { TidemarkError } from '../errors/index.js';
import type { SecurityConfig } from '../config/server-config.js';

/**
 * The cluster's TLS material (`--ca --cert --key`, security.ca-path/cert-path/key-path), as TiCDC uses it: the
 * same files for the server on --addr, for dialing the other captures (the certificate is the client certificate
 * too) and for etcd at https:// endpoints. Read once at start; paths kept for messages.
 */
export interface ClusterTls {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly caPath?: string | undefined;
  readonly certPath?: string | undefined;
  /** security.cert-allowed-cn; non-empty: every client must present a certificate with one of these CNs. */
  readonly allowedCn: readonly string[];
  /** The server serves TLS (cert and key given). */
  readonly serving: boolean;
}

const FLAG_OF: Readonly<Record<string, string>> = { 'ca-path': '--ca', 'cert-path': '--cert', 'key-path': '--key' };

/** Reads the files security names; ErrConfigUnreadable naming the flag and the path. Undefined without any file. */
export function loadClusterTls(security: SecurityConfig): ClusterTls | undefined {
  const read = (key: 'ca-path' | 'cert-path' | 'key-path'): string | undefined => {
    const path = security[key];
    if (path === undefined) return undefined;
    try {
      return readFileSync(path, 'utf8');
    } catch (error) {
      throw new TidemarkError('ErrConfigUnreadable', `cannot read ${FLAG_OF[key]} (security.${key}) "${path}": ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`, { cause: error });
    }
  };
  const ca = read('ca-path');
  const cert = read('cert-path');
  const key = read('key-path');
  if (ca === undefined && cert === undefined) return undefined;
  return {
    ...(ca === undefined ? {} : { ca, caPath: security['ca-path'] }),
    ...(cert === undefined ? {} : { cert, certPath: security['cert-path'] }),
    ...(key === undefined ? {} : { key }),
    allowedCn: security['cert-allowed-cn'],
    serving: cert !== undefined && key !== undefined,
  };
}

/**
 * node:tls server options for --addr. Client certificates are asked for when there is a CA, and checked by
 * `refusedClient` after the handshake (not by OpenSSL), so that an HTTP client is told why in a JSON answer.
 * ALPN: a client that offers HTTP/1.1 (curl, the CLI) gets it; one that offers only h2 (gRPC, the captures) gets
 * h2. The port mux then tells them apart by the HTTP/2 preface, as in plaintext.
 */
export function serverTlsOptions(tls: ClusterTls): TlsOptions {
  return {
    cert: tls.cert,
    key: tls.key,
    ...(tls.ca === undefined ? {} : { ca: tls.ca, requestCert: true }),
    rejectUnauthorized: false,
    minVersion: 'TLSv1.2',
    ALPNCallback: ({ protocols }) => (protocols.includes('http/1.1') ? 'http/1.1' : protocols.includes('h2') ? 'h2' : undefined),
  };
}

/** Why this TLS connection's client may not talk to the server, or undefined when it may. Names the CN, never a key. */
export function refusedClient(socket: TLSSocket, tls: ClusterTls): TidemarkError | undefined {
  if (tls.ca === undefined) return undefined;
  const peer = socket.getPeerCertificate();
  const hasCert = peer !== null && typeof peer === 'object' && Object.keys(peer).length > 0;
  const allowed = tls.allowedCn;
  const allowedText = allowed.join(', ');
  if (!hasCert) {
    if (allowed.length === 0) return undefined;
    return new TidemarkError('ErrTLSClientCertificate', `this cdc server accepts only clients with a certificate (cert-allowed-cn: ${allowedText}), and none was presented`, {
      hint: 'pass --ca, --cert and --key to the cdc command',
    });
  }
  const cn = typeof peer.subject?.CN === 'string' ? peer.subject.CN : Array.isArray(peer.subject?.CN) ? String(peer.subject.CN[0]) : '(none)';
  if (!socket.authorized) {
    const reason = String(socket.authorizationError ?? 'not verified');
    const why =
      reason === 'CERT_HAS_EXPIRED'
        ? `has expired (valid until ${peer.valid_to})`
        : reason === 'CERT_NOT_YET_VALID'
          ? `is not valid yet (from ${peer.valid_from}; check the clocks)`
          : /ISSUER|SELF_SIGNED|SIGNATURE|LEAF/.test(reason)
            ? `is not signed by the server's CA (${tls.caPath ?? '--ca'})`
            : `was refused (${reason})`;
    return new TidemarkError('ErrTLSClientCertificate', `the client certificate (CN "${cn}") ${why}`, {
      hint: 'use a client certificate signed by the cluster\'s CA and valid now',
      details: { cn, reason },
    });
  }
  if (allowed.length > 0 && !allowed.includes(cn)) {
    return new TidemarkError('ErrTLSClientCertificate', `the client certificate's CN "${cn}" is not allowed by this cdc server (cert-allowed-cn: ${allowedText})`, {
      hint: 'use a certificate with an allowed CN, or add it to --cert-allowed-cn (security.cert-allowed-cn) on every capture',
      details: { cn, allowed },
    });
  }
  return undefined;
}
