/**
 * Many timeouts, one timer. Every proxied request arms several timeouts (response
 * headers, connect watchdog, stream idle and deadline) that almost always end cancelled;
 * arming a runtime timer for each costs microseconds per request on Deno. Deadlines keeps
 * them in a binary heap and holds a single clock timer for the earliest, so arming and
 * cancelling are cheap heap operations and the timer is re-armed only when the earliest
 * deadline moves.
 *
 * @module
 */
import type { Clock, TimerId } from "./clock.ts";

/** A scheduled callback; `cancel()` is idempotent. */
export interface Deadline {
  cancel(): void;
}

interface Entry {
  at: number;
  seq: number;
  callback: () => void;
  cancelled: boolean;
}

/** A heap of deadlines driven by one timer of `clock`. */
export class Deadlines {
  readonly #clock: Clock;
  readonly #heap: Entry[] = [];
  #seq = 0;
  #timer: TimerId | undefined;
  #timerAt = Infinity;
  #live = 0;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Number of deadlines armed and not yet fired or cancelled. */
  get size(): number {
    return this.#live;
  }

  /** Calls `callback` once `ms` have passed, unless cancelled first. */
  after(ms: number, callback: () => void): Deadline {
    const entry: Entry = {
      at: this.#clock.now() + Math.max(0, ms),
      seq: this.#seq++,
      callback,
      cancelled: false,
    };
    this.#push(entry);
    this.#live++;
    if (entry.at < this.#timerAt) this.#arm(entry.at);
    return {
      cancel: () => {
        if (entry.cancelled) return;
        entry.cancelled = true;
        this.#live--;
        if (this.#live === 0) this.#disarm();
        // Cancelled entries wait in the heap until their time; long timeouts cancelled
        // at a high request rate would pile up, so the heap is rebuilt once they dominate.
        else if (this.#heap.length > 1024 && this.#heap.length > 4 * this.#live) this.#compact();
      },
    };
  }

  /** Cancels everything (shutdown). */
  clear(): void {
    for (const entry of this.#heap) entry.cancelled = true;
    this.#heap.length = 0;
    this.#live = 0;
    this.#disarm();
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = this.#clock.setTimeout(() => this.#fire(), Math.max(0, at - this.#clock.now()));
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.#clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
    this.#heap.length = 0;
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = this.#clock.now();
    const due: Entry[] = [];
    while (this.#heap.length > 0 && (this.#heap[0].cancelled || this.#heap[0].at <= now)) {
      const entry = this.#pop();
      if (!entry.cancelled) {
        entry.cancelled = true;
        this.#live--;
        due.push(entry);
      }
    }
    if (this.#heap.length > 0) this.#arm(this.#heap[0].at);
    for (const entry of due) entry.callback();
  }

  #compact(): void {
    const live = this.#heap.filter((entry) => !entry.cancelled);
    this.#heap.length = 0;
    for (const entry of live) this.#push(entry);
    const earliest = this.#heap[0]?.at ?? Infinity;
    if (earliest > this.#timerAt) this.#arm(earliest);
  }

  #before(a: Entry, b: Entry): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  #push(entry: Entry): void {
    const heap = this.#heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#before(heap[i], heap[parent])) break;
      [heap[i], heap[parent]] = [heap[parent], heap[i]];
      i = parent;
    }
  }

  #pop(): Entry {
    const heap = this.#heap;
    const top = heap[0];
    const last = heap.pop() as Entry;
    if (heap.length > 0) {
      heap[0] = last;
      let i = 0;
      for (;;) {
        const left = 2 * i + 1;
        const right = left + 1;
        let smallest = i;
        if (left < heap.length && this.#before(heap[left], heap[smallest])) smallest = left;
        if (right < heap.length && this.#before(heap[right], heap[smallest])) smallest = right;
        if (smallest === i) break;
        [heap[i], heap[smallest]] = [heap[smallest], heap[i]];
        i = smallest;
      }
    }
    return top;
  }
}
