import type { GlobalReactorState } from '../orchestrator/global-state.js';
import type { Reactor } from '../orchestrator/reactor.js';
import { TidemarkError } from '../errors/index.js';

/**
 * The processor manager reactor, one per capture (DESIGN §4). It will create and close a processor per
 * changefeed scheduled here (changefeed issue). For now it checks that its own capture key is alive:
 * when the key is gone, the session is lost and the capture must restart (TiCDC's CheckCaptureAlive).
 */
export class ProcessorManager implements Reactor<GlobalReactorState> {
  lastTickAt = 0;
  private registered = false;

  constructor(private readonly captureId: string) {}

  tick(state: GlobalReactorState): Promise<void> {
    const alive = state.captures.has(this.captureId);
    if (alive) this.registered = true;
    else if (this.registered) {
      return Promise.reject(new TidemarkError('ErrCaptureSuicide', `capture ${this.captureId} is no longer registered in etcd`));
    }
    this.lastTickAt = Date.now();
    return Promise.resolve();
  }
}
