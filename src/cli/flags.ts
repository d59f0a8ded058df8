import { Flags } from '@oclif/core';
import { ApiClient } from '../core/api/client.js';

/** Flags shared by the admin commands: every one talks to a capture's HTTP API, never to etcd. */
export const serverFlag = Flags.string({ description: 'address of any cdc server of the cluster', default: 'http://127.0.0.1:8300' });
export const namespaceFlag = Flags.string({ char: 'n', description: 'changefeed namespace', default: 'default' });
export const changefeedIdFlag = Flags.string({ char: 'c', description: 'changefeed id', required: true });

/**
 * How a command reaches a cdc server with TLS and API users (TiCDC's --ca --cert --key): every admin command
 * takes them with --server. The password is best given in TIDEMARK_PASSWORD: a flag shows in the shell's history.
 */
export const connectionFlags = {
  server: serverFlag,
  ca: Flags.string({ description: 'PEM CA that signed the cdc server\'s certificate (https:// servers)', helpGroup: 'CONNECTION' }),
  cert: Flags.string({ description: 'PEM client certificate to present to the cdc server (with --key)', helpGroup: 'CONNECTION' }),
  key: Flags.string({ description: 'PEM private key of --cert', helpGroup: 'CONNECTION' }),
  user: Flags.string({ description: 'API user of the server\'s security.client-user-list', helpGroup: 'CONNECTION' }),
  password: Flags.string({ description: 'password of --user (prefer the TIDEMARK_PASSWORD variable)', env: 'TIDEMARK_PASSWORD', helpGroup: 'CONNECTION' }),
};

export interface ConnectionFlagValues {
  readonly server: string;
  readonly ca?: string | undefined;
  readonly cert?: string | undefined;
  readonly key?: string | undefined;
  readonly user?: string | undefined;
  readonly password?: string | undefined;
}

/** The API client the connection flags describe. */
export function apiClientOf(flags: ConnectionFlagValues, timeoutMs?: number): ApiClient {
  return new ApiClient(flags.server, timeoutMs, { caPath: flags.ca, certPath: flags.cert, keyPath: flags.key, user: flags.user, password: flags.password });
}
