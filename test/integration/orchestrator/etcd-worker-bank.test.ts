import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { EtcdClient } from '../../../src/core/orchestrator/etcd-client.js';
import { EtcdWorker } from '../../../src/core/orchestrator/etcd-worker.js';
import { PatchSkip, jsonPatch, type DataPatch, type Reactor, type ReactorState } from '../../../src/core/orchestrator/reactor.js';
import { etcdEndpoint, requireService, uniqueName } from '../../helpers/services.js';
import { waitFor } from '../../helpers/wait-for.js';
import { leakCheck } from '../../helpers/leak-check.js';

const ACCOUNTS = 5;
const INITIAL = 1000;
const WORKERS = 4;
const TRANSFERS_PER_WORKER = 40;

interface Transfer {
  readonly from: number;
  readonly to: number;
  readonly amount: number;
}

/** The mirrored bank: balances by account and the journal of committed transfers. */
class BankState implements ReactorState {
  readonly balances = new Map<number, number>();
  readonly journal = new Map<string, Transfer>();
  private patches: DataPatch[][] = [];

  constructor(private readonly prefix: string) {}

  update(key: string, value: Uint8Array | undefined): void {
    const rest = key.slice(this.prefix.length);
    if (rest.startsWith('account/')) {
      const id = Number(rest.slice('account/'.length));
      if (value === undefined) this.balances.delete(id);
      else this.balances.set(id, Number(new TextDecoder().decode(value)));
    } else if (rest.startsWith('journal/')) {
      if (value === undefined) this.journal.delete(rest);
      else this.journal.set(rest, JSON.parse(new TextDecoder().decode(value)) as Transfer);
    }
  }

  queue(group: DataPatch[]): void {
    this.patches.push(group);
  }

  takePatches(): DataPatch[][] {
    const taken = this.patches;
    this.patches = [];
    return taken;
  }
}

/** Each tick moves a random amount between two random accounts, journaling it in the same transaction. */
class BankReactor implements Reactor<BankState> {
  done = 0;
  constructor(
    private readonly prefix: string,
    private readonly worker: number,
  ) {}

  tick(state: BankState): Promise<void> {
    if (this.done >= TRANSFERS_PER_WORKER || state.balances.size < ACCOUNTS) return Promise.resolve();
    const from = Math.floor(Math.random() * ACCOUNTS);
    const to = (from + 1 + Math.floor(Math.random() * (ACCOUNTS - 1))) % ACCOUNTS;
    const amount = 1 + Math.floor(Math.random() * 300);
    const transfer: Transfer = { from, to, amount };
    const seq = this.done++;
    state.queue([
      jsonPatch<number>(`${this.prefix}account/${from}`, (old) => {
        if (old === undefined || old < amount) throw new PatchSkip('insufficient funds');
        return old - amount;
      }),
      jsonPatch<number>(`${this.prefix}account/${to}`, (old) => (old ?? 0) + amount),
      jsonPatch<Transfer>(`${this.prefix}journal/${this.worker}-${seq}`, () => transfer),
    ]);
    return Promise.resolve();
  }
}

describe('EtcdWorker against real etcd (bank invariant)', () => {
  const leaks = leakCheck();
  const prefix = `/tidemark-test/${uniqueName('bank')}/`;
  let client: EtcdClient;

  before(async () => {
    await requireService('etcd');
    client = new EtcdClient({ hosts: etcdEndpoint() });
    for (let i = 0; i < ACCOUNTS; i++) await client.put(`${prefix}account/${i}`).value(String(INITIAL));
  });
  after(async () => {
    await client.delete().prefix(prefix);
    client.close();
    await leaks.check();
  });

  it('keeps the total constant and loses no transfer with several workers in parallel', async () => {
    const controller = new AbortController();
    const workers = Array.from({ length: WORKERS }, (_, w) => {
      const state = new BankState(prefix);
      const reactor = new BankReactor(prefix, w);
      const worker = new EtcdWorker({ client, prefix, reactor, state, tickIntervalMs: 5 });
      return { state, reactor, worker, run: worker.run(controller.signal) };
    });
    try {
      await waitFor(() => workers.every((w) => w.reactor.done >= TRANSFERS_PER_WORKER), { timeoutMs: 60_000, what: 'every transfer to be attempted' });
      // let the last patches commit: every worker's mirror shows the same journal as etcd
      await waitFor(
        async () => {
          const journal = await client.getAll().prefix(`${prefix}journal/`).keys();
          return workers.every((w) => w.state.journal.size === journal.length) && journal.length;
        },
        { timeoutMs: 10_000, what: 'the mirrors to catch up' },
      );
    } finally {
      controller.abort();
      await Promise.all(workers.map((w) => w.run));
    }

    const balances = await client.getAll().prefix(`${prefix}account/`).strings();
    const journal = Object.values(await client.getAll().prefix(`${prefix}journal/`).json()) as Transfer[];
    const total = Object.values(balances).reduce((sum, v) => sum + Number(v), 0);
    assert.equal(total, ACCOUNTS * INITIAL, 'money was created or destroyed');

    const expected = new Map<number, number>(Array.from({ length: ACCOUNTS }, (_, i) => [i, INITIAL]));
    for (const t of journal) {
      expected.set(t.from, expected.get(t.from)! - t.amount);
      expected.set(t.to, expected.get(t.to)! + t.amount);
    }
    for (let i = 0; i < ACCOUNTS; i++) {
      assert.equal(Number(balances[`${prefix}account/${i}`]), expected.get(i), `account ${i} does not match its journal: an update was lost`);
    }
    assert.ok(journal.length >= WORKERS * TRANSFERS_PER_WORKER * 0.3, `too few transfers committed: ${journal.length}`);
    const conflicts = workers.reduce((n, w) => n + w.worker.stats.conflicts, 0);
    assert.ok(conflicts > 0, 'the workers never conflicted, so the test proved nothing about conflicts');
  });
});
