import { BaseCommand } from '../cli/base-command.js';
import { buildInfo, type BuildInfo } from '../core/build-info/index.js';

export default class Version extends BaseCommand {
  static override description = 'Print the version of Tidemark and of the Node.js runtime it runs on.';
  static override examples = ['<%= config.bin %> version', '<%= config.bin %> version --json'];

  run(): Promise<BuildInfo> {
    const info = buildInfo();
    this.log(`${info.name} ${info.version} (node ${info.node}, ${info.platform})`);
    return Promise.resolve(info);
  }
}
