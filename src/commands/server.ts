import { Flags } from '@oclif/core';
import { TidemarkError } from '../core/errors/index.js';
import { BaseCommand } from '../cli/base-command.js';
import { LOG_LEVELS, createLogger } from '../core/logger/logger.js';
import { loadServerConfig, resolveServerConfig } from '../core/config/server-config.js';
import { Server } from '../core/server/server.js';
import { SinkRegistry } from '../core/sink/registry.js';

export default class ServerCommand extends BaseCommand {
  static override description = 'Start a capture: a Tidemark node that joins the cluster through etcd and serves the OpenAPI.';
  static override examples = [
    '<%= config.bin %> server --pd http://127.0.0.1:2379 --addr 127.0.0.1:8300',
    '<%= config.bin %> server --config server.toml',
    'TIDEMARK_ETCD_PASSWORD=… <%= config.bin %> server --pd https://10.0.0.5:2379 --addr 10.0.0.7:8300 --ca ca.pem --cert capture.pem --key capture-key.pem --cert-allowed-cn tidemark-capture,tidemark-cli --etcd-user tidemark',
  ];
  static override enableJsonFlag = false;
  static override flags = {
    pd: Flags.string({ description: 'etcd endpoints, comma-separated [default: http://127.0.0.1:2379]' }),
    addr: Flags.string({ description: 'host:port the HTTP API listens on [default: 127.0.0.1:8300]' }),
    'advertise-addr': Flags.string({ description: 'host:port other captures and the CLI reach this one on [default: --addr]' }),
    'data-dir': Flags.string({ description: 'folder for sorter spill and other local data [default: ./.tidemark-data]' }),
    'cluster-id': Flags.string({ description: 'cluster to join [default: default]' }),
    config: Flags.string({ description: 'server config file (TOML, JSON or YAML) [default: .tidemarkrc[.toml|.json|.yaml] or tidemark.config.* in the working directory, if any]' }),
    'log-level': Flags.option({ options: LOG_LEVELS, description: 'log level [default: info]' })(),
    'log-file': Flags.string({ description: 'log to this file instead of stderr' }),
    upstream: Flags.string({ description: 'default upstream mysql:// URI for changefeeds' }),
    'heap-growth': Flags.string({ description: 'how far the JavaScript heap may grow past what is live before a full collection, 1.1 to 4 (heap-growth) [default: 2]' }),
    ca: Flags.string({ description: 'PEM CA (security.ca-path): verifies etcd at https:// endpoints, the other captures and client certificates', helpGroup: 'SECURITY' }),
    cert: Flags.string({ description: 'PEM certificate (security.cert-path): --addr serves TLS with it, and it is the client certificate to etcd and the other captures', helpGroup: 'SECURITY' }),
    key: Flags.string({ description: 'PEM private key of --cert (security.key-path)', helpGroup: 'SECURITY' }),
    'cert-allowed-cn': Flags.string({ description: 'comma-separated common names a client certificate must have to connect to --addr (security.cert-allowed-cn; needs --ca)', helpGroup: 'SECURITY' }),
    'etcd-user': Flags.string({ description: 'etcd user (security.etcd-user); its password from TIDEMARK_ETCD_PASSWORD', helpGroup: 'SECURITY' }),
    'etcd-password': Flags.string({ description: 'password of --etcd-user (security.etcd-password; prefer the TIDEMARK_ETCD_PASSWORD variable)', env: 'TIDEMARK_ETCD_PASSWORD', helpGroup: 'SECURITY' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(ServerCommand);
    const { config: fromFile, file } = await loadServerConfig(flags.config);
    const config = resolveServerConfig(
      fromFile,
      {
        pd: flags.pd,
        addr: flags.addr,
        'advertise-addr': flags['advertise-addr'],
        'data-dir': flags['data-dir'],
        'cluster-id': flags['cluster-id'],
        'log-level': flags['log-level'],
        'log-file': flags['log-file'],
        upstream: flags.upstream,
        'heap-growth': flags['heap-growth'] === undefined ? undefined : parseFactor(flags['heap-growth']),
        security: {
          'ca-path': flags.ca,
          'cert-path': flags.cert,
          'key-path': flags.key,
          'cert-allowed-cn': flags['cert-allowed-cn']?.split(',').map((cn) => cn.trim()).filter(Boolean),
          'etcd-user': flags['etcd-user'],
          'etcd-password': flags['etcd-password'],
        },
      },
      file ?? 'flags',
    );
    const logger = createLogger({ level: config['log-level'], file: config['log-file'] });
    const controller = new AbortController();
    let signals = 0;
    let server: Server | undefined;
    const onSignal = (name: NodeJS.Signals): void => {
      signals++;
      if (signals === 1) {
        logger.info('signal received: draining (send it again to exit at once)', { signal: name });
        // tables move to the other captures first, then the capture stops
        void (server?.drain(30_000) ?? Promise.resolve()).finally(() => controller.abort());
      } else {
        logger.warn('second signal: exiting now', { signal: name });
        process.exit(1);
      }
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
    try {
      const sinks = SinkRegistry.fromPlugins(this.config.getPluginsList());
      server = new Server({ config, logger, sinks });
      await server.run(controller.signal);
    } finally {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
    }
  }
}

/** A `--heap-growth` value as a number; the range is checked with the config (heap-growth). */
function parseFactor(text: string): number {
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) {
    throw new TidemarkError('ErrConfigInvalid', `--heap-growth "${text}" is not a number: give a factor from 1.1 to 4, e.g. 2`, { details: { key: 'heap-growth' } });
  }
  return value;
}
