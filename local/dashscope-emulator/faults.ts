import type { EmulatorOp, InjectedFault } from './types.js';

interface PendingFault {
  fault: InjectedFault;
  remaining: number;
}

/** Scripted errors per operation, each answered a given number of times, first in first out. */
export class FaultQueue {
  readonly #pending = new Map<EmulatorOp, PendingFault[]>();

  /** Makes the next `times` calls of `op` answer `fault` (after the faults already queued). */
  add(op: EmulatorOp, fault: InjectedFault, times: number): void {
    if (!Number.isInteger(times) || times < 1) {
      throw new RangeError(`times must be a positive integer, got ${times}`);
    }
    const queue = this.#pending.get(op) ?? [];
    queue.push({ fault: { ...fault }, remaining: times });
    this.#pending.set(op, queue);
  }

  /** The fault this call of `op` must answer, if any, using one of its repetitions. */
  take(op: EmulatorOp): InjectedFault | undefined {
    const queue = this.#pending.get(op);
    const head = queue?.[0];
    if (!queue || !head) return undefined;
    head.remaining -= 1;
    if (head.remaining === 0) queue.shift();
    return head.fault;
  }

  /** Drops every queued fault. */
  clear(): void {
    this.#pending.clear();
  }
}
