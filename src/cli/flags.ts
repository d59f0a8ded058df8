import { Flags } from '@oclif/core';

/** Flags shared by the admin commands: every one talks to a capture's HTTP API, never to etcd. */
export const serverFlag = Flags.string({ description: 'address of any cdc server of the cluster', default: 'http://127.0.0.1:8300' });
export const namespaceFlag = Flags.string({ char: 'n', description: 'changefeed namespace', default: 'default' });
export const changefeedIdFlag = Flags.string({ char: 'c', description: 'changefeed id', required: true });
