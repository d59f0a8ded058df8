import type { Etcd3, IKeyValue } from 'etcd3';
import { TidemarkError } from '../errors/index.js';
import { sleep } from '../lifecycle/abortable.js';
import { ownerKey, ownerPrefix } from '../orchestrator/etcd-keys.js';

/**
 * The owner election on `/tidb/cdc/{cluster}/__cdc_meta__/owner/` (etcd's election recipe, as TiCDC's
 * `concurrency.Election`): each candidate puts `owner/{lease-id hex}` = its capture id under its session
 * lease; the key with the smallest create revision is the owner. A candidate waits for the key just
 * before its own to go away. Keys die with their lease, so a dead owner is replaced after the TTL.
 */
export class OwnerElection {
  readonly key: string;

  constructor(
    private readonly client: Etcd3,
    private readonly clusterId: string,
    private readonly leaseId: string,
    private readonly captureId: string,
  ) {
    this.key = ownerKey(clusterId, leaseId);
  }

  /** Resolves when this capture is the owner; rejects with ErrCaptureSuicide if its key vanished (lease lost). */
  async campaign(signal: AbortSignal): Promise<void> {
    await this.client
      .if(this.key, 'Create', '==', 0)
      .then(this.client.put(this.key).value(this.captureId).lease(this.leaseId))
      .commit();
    for (;;) {
      const res = await this.client.getAll().prefix(ownerPrefix(this.clusterId)).sort('Create', 'Ascend').exec();
      const index = res.kvs.findIndex((kv: IKeyValue) => kv.key.toString() === this.key);
      if (index < 0) {
        throw new TidemarkError('ErrCaptureSuicide', `owner candidate key ${this.key} vanished: the capture's etcd session was lost`);
      }
      if (index === 0) return;
      await this.waitForDelete(res.kvs[index - 1].key.toString(), BigInt(res.header.revision), signal);
    }
  }

  /** Gives up ownership or candidacy: deletes the key so the next candidate takes over at once. */
  async resign(): Promise<void> {
    await this.client.delete().key(this.key);
  }

  /** The capture id of the current owner, if any. */
  static async currentOwner(client: Etcd3, clusterId: string): Promise<string | undefined> {
    const res = await client.getAll().prefix(ownerPrefix(clusterId)).sort('Create', 'Ascend').limit(1).exec();
    return res.kvs[0]?.value.toString();
  }

  private async waitForDelete(key: string, revision: bigint, signal: AbortSignal): Promise<void> {
    const watcher = await this.client.watch().key(key).startRevision(String(revision + 1n)).create();
    try {
      const deleted = new Promise<void>((resolve) => watcher.once('delete', () => resolve()));
      // the periodic re-check covers a watch that broke while etcd was away
      await Promise.race([deleted, sleep(1000, signal)]);
    } finally {
      await watcher.cancel().catch(() => undefined);
    }
  }
}
