import type { EmulatorFault, EmulatorOp } from './types.js';

interface PendingFault {
  fault: EmulatorFault;
  remaining: number;
}

/** Scripted faults per operation, each answered a given number of times, first in first out. */
export class FaultQueue {
  readonly #pending = new Map<EmulatorOp, PendingFault[]>();

  /** Makes the next `times` calls of `op` answer `fault` (after the faults already queued). */
  add(op: EmulatorOp, fault: EmulatorFault, times: number): void {
    if (!Number.isInteger(times) || times < 1) {
      throw new RangeError(`times must be a positive integer, got ${times}`);
    }
    if ('kind' in fault && fault.kind === 'slow' && !(Number.isFinite(fault.delayMs) && fault.delayMs >= 0)) {
      throw new RangeError(`delayMs must be a finite number >= 0, got ${fault.delayMs}`);
    }
    const queue = this.#pending.get(op) ?? [];
    queue.push({ fault: { ...fault }, remaining: times });
    this.#pending.set(op, queue);
  }

  /** The fault this call of `op` must answer, if any, using one of its repetitions. */
  take(op: EmulatorOp): EmulatorFault | undefined {
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
