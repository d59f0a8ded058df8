/**
 * The catalogue of every error code Tidemark emits, in TiCDC's naming, with how each one behaves:
 * whether retrying can help, which HTTP status the OpenAPI answers with and which exit code the CLI uses.
 * A code is declared once here; `TidemarkError` derives its behaviour from this table, so they cannot drift.
 */
export interface ErrorBehaviour {
  /** Retrying the same operation later can succeed (network blips, a busy server). */
  readonly retryable: boolean;
  readonly httpStatus: number;
  readonly exitCode: number;
}

const input = { retryable: false, httpStatus: 400, exitCode: 2 } as const;
const unavailable = { retryable: true, httpStatus: 503, exitCode: 3 } as const;
const fatal = { retryable: false, httpStatus: 500, exitCode: 1 } as const;
const transient = { retryable: true, httpStatus: 500, exitCode: 1 } as const;
/** A TLS problem needs a certificate or a setting changed: retrying the same connection cannot help. */
const tls = { retryable: false, httpStatus: 400, exitCode: 1 } as const;

export const errorCatalogue = {
  // input and configuration
  ErrInvalidArgument: input,
  ErrConfigInvalid: input,
  ErrConfigUnknownKey: input,
  ErrConfigUnreadable: input,
  ErrClusterIdInvalid: input,
  ErrSinkURIInvalid: input,
  ErrSinkUnknownScheme: input,
  ErrDispatcherUnavailable: input,
  ErrInvalidTs: input,
  ErrNotFound: { retryable: false, httpStatus: 404, exitCode: 1 },
  ErrCaptureNotExist: { retryable: false, httpStatus: 404, exitCode: 1 },
  ErrChangefeedAlreadyExists: { retryable: false, httpStatus: 409, exitCode: 1 },
  ErrChangefeedNotExists: { retryable: false, httpStatus: 404, exitCode: 1 },
  ErrChangefeedUpdateRefused: input,
  ErrAdminJobRefused: input,
  ErrUpstreamMissing: input,
  ErrUpstreamURIInvalid: input,
  ErrStartTsBeyondUpstream: input,
  ErrUnsupportedColumnType: { retryable: false, httpStatus: 400, exitCode: 1 },
  // services and networking
  ErrServiceUnreachable: unavailable,
  ErrEtcdUnreachable: unavailable,
  ErrUpstreamUnreachable: unavailable,
  ErrAddressInUse: { retryable: false, httpStatus: 500, exitCode: 3 },
  ErrConnectionLost: transient,
  // TLS (ssl-mode of mysql:// URIs): the server's certificate failed verification, the server wants TLS and the
  // URI says disabled, the URI wants TLS and the server offers none, or the handshake failed otherwise
  ErrTLSCertificate: tls,
  ErrTLSRequired: tls,
  ErrTLSUnavailable: tls,
  ErrTLSHandshake: tls,
  // the cluster's own TLS and authentication (cdc server --ca --cert --key --cert-allowed-cn, security.client-user-list):
  // a client certificate the server refuses (missing, not signed by the CA, expired, CN not allowed); a missing or
  // wrong API user/password; etcd refusing the etcd user or its password, or a key the user may not touch
  ErrTLSClientCertificate: { retryable: false, httpStatus: 403, exitCode: 1 },
  ErrUnauthorized: { retryable: false, httpStatus: 401, exitCode: 1 },
  ErrEtcdAuthFailed: { retryable: false, httpStatus: 500, exitCode: 3 },
  ErrClusterUnhealthy: unavailable,
  ErrOwnerNotFound: unavailable,
  ErrNotOwner: transient,
  // upstream (binlog)
  ErrBinlogDisabled: fatal,
  ErrBinlogFormatNotRow: fatal,
  ErrBinlogRowImageNotFull: fatal,
  ErrReplicationPrivilege: fatal,
  ErrBinlogPurged: fatal,
  ErrBinlogChecksumMismatch: transient,
  ErrBinlogCorrupt: fatal,
  // schema storage (upstreams without binlog_row_metadata=FULL)
  ErrSchemaUnknown: fatal,
  ErrSchemaMismatch: fatal,
  // initial snapshot (--snapshot initial)
  ErrSnapshotUnsupported: input,
  ErrSnapshotFailed: transient,
  /** A chunk read's consistent snapshot stayed below what the table was written to (commits not visible yet). */
  ErrSnapshotBehind: transient,
  // lifecycle
  ErrClosed: fatal,
  ErrAborted: { retryable: false, httpStatus: 499, exitCode: 130 },
  ErrCaptureSuicide: transient,
  ErrTimeout: transient,
  // a broken invariant: always a bug in Tidemark
  ErrBugIndicating: fatal,
  ErrSinkFailed: transient,
  ErrSinkRejected: fatal,
  ErrInvariantBroken: fatal,
} as const satisfies Record<string, ErrorBehaviour>;

export type ErrorCode = keyof typeof errorCatalogue;

export function behaviourOf(code: ErrorCode): ErrorBehaviour {
  return errorCatalogue[code];
}
