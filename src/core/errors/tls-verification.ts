/**
 * What node:tls says when a peer's certificate does not verify, recognised once for every TLS client of
 * Tidemark (the upstream and downstream MySQL connections, etcd, the cdc server's API and channel): by the
 * error's code, or by its message where a library replaced the code (mysql2's HANDSHAKE_SSL_ERROR, gRPC's text).
 */

/** The OpenSSL verification results (node:tls codes) and their meaning; `{ca}` stands for where the trusted CA came from. */
const MEANINGS: Readonly<Record<string, string>> = {
  CERT_HAS_EXPIRED: 'the server certificate has expired',
  CERT_NOT_YET_VALID: 'the server certificate is not valid yet (check the clocks)',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'the server certificate is not signed by {ca} (wrong CA?)',
  UNABLE_TO_GET_ISSUER_CERT: 'the server certificate is not signed by {ca} (wrong CA?)',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'the server certificate is not signed by {ca} (wrong CA?)',
  SELF_SIGNED_CERT_IN_CHAIN: 'the server certificate is not signed by {ca} (wrong CA?)',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'the server certificate is self-signed, not signed by {ca} (wrong CA?)',
  CERT_SIGNATURE_FAILURE: 'the server certificate signature does not verify against {ca} (wrong CA?)',
  CERT_REVOKED: 'the server certificate is revoked',
  ERR_TLS_CERT_ALTNAME_INVALID: 'the server certificate does not name the host',
};

const BY_MESSAGE: readonly [RegExp, string][] = [
  [/certificate has expired/i, 'CERT_HAS_EXPIRED'],
  [/certificate is not yet valid/i, 'CERT_NOT_YET_VALID'],
  [/unable to verify the first certificate/i, 'UNABLE_TO_VERIFY_LEAF_SIGNATURE'],
  [/unable to get (local )?issuer certificate/i, 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY'],
  [/self[- ]signed certificate in certificate chain/i, 'SELF_SIGNED_CERT_IN_CHAIN'],
  [/self[- ]signed certificate/i, 'DEPTH_ZERO_SELF_SIGNED_CERT'],
  [/certificate signature failure/i, 'CERT_SIGNATURE_FAILURE'],
  [/certificate revoked/i, 'CERT_REVOKED'],
  [/Hostname\/IP does not match certificate's altnames|does not match certificate|ERR_TLS_CERT_ALTNAME_INVALID/i, 'ERR_TLS_CERT_ALTNAME_INVALID'],
];

/** The verification result a failure stands for (its node:tls code), or undefined when it is no certificate problem. */
export function certificateProblem(code: string | undefined, message: string): string | undefined {
  if (code !== undefined && code in MEANINGS) return code;
  return BY_MESSAGE.find(([re]) => re.test(message))?.[1];
}

/** What `problem` (from certificateProblem) means, with `ca` naming the trusted CA ("the CA in ssl-ca", "--ca /path"). */
export function describeCertificateProblem(problem: string, ca: string): string {
  return (MEANINGS[problem] ?? `the server certificate did not verify (${problem})`).replace('{ca}', ca);
}

/** The fix for an expired or not-yet-valid certificate, as opposed to a wrong CA or host. */
export function isValidityProblem(problem: string): boolean {
  return problem === 'CERT_HAS_EXPIRED' || problem === 'CERT_NOT_YET_VALID';
}
