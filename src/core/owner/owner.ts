import type { GlobalReactorState } from '../orchestrator/global-state.js';
import type { Reactor } from '../orchestrator/reactor.js';
import { TidemarkError } from '../errors/index.js';

/**
 * The owner reactor (DESIGN §4): runs on the elected capture only. This first version keeps the cluster
 * view and gives up when it is no longer the owner; changefeed scheduling, DDL and checkpoint aggregation
 * come with the changefeed and scheduling issues.
 */
export class Owner implements Reactor<GlobalReactorState> {
  lastTickAt = 0;

  constructor(private readonly captureId: string) {}

  tick(state: GlobalReactorState): Promise<void> {
    if (state.ownerCaptureId !== this.captureId) {
      return Promise.reject(new TidemarkError('ErrNotOwner', `capture ${this.captureId} is no longer the owner`));
    }
    this.lastTickAt = Date.now();
    return Promise.resolve();
  }
}
