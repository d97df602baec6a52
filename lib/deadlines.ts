/**
 * Many timeouts, one timer. Every proxied request arms several timeouts (response
 * headers, connect watchdog, stream idle and deadline) that almost always end cancelled;
 * arming a runtime timer for each costs microseconds per request on Deno. Deadlines keeps
 * them in a binary heap and holds a single clock timer for the earliest, re-armed only
 * when the earliest deadline moves earlier.
 *
 * Each entry knows its place in the heap, so cancelling removes it at once: a cancelled
 * timeout must not keep its callback (and the request it closes over) alive until its
 * time, which for a ten-minute header timeout would carry every request into the old
 * generation of the garbage collector.
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
  /** Position in the heap; -1 once fired or cancelled. */
  index: number;
}

/** A heap of deadlines driven by one timer of `clock`. */
export class Deadlines {
  readonly #clock: Clock;
  readonly #heap: Entry[] = [];
  #seq = 0;
  #timer: TimerId | undefined;
  #timerAt = Infinity;

  constructor(clock: Clock) {
    this.#clock = clock;
  }

  /** Number of deadlines armed and not yet fired or cancelled. */
  get size(): number {
    return this.#heap.length;
  }

  /**
   * Calls `callback` once `ms` have passed, unless cancelled first. A caller that has just
   * read the clock passes that time as `now`, saving a read (a proxied request arms three
   * or four deadlines).
   */
  after(ms: number, callback: () => void, now: number = this.#clock.now()): Deadline {
    const entry: Entry = {
      at: now + Math.max(0, ms),
      seq: this.#seq++,
      callback,
      index: this.#heap.length,
    };
    this.#heap.push(entry);
    this.#siftUp(entry.index);
    if (entry.at < this.#timerAt) this.#arm(entry.at);
    return { cancel: () => this.#remove(entry) };
  }

  /** Cancels everything (shutdown). */
  clear(): void {
    for (const entry of this.#heap) entry.index = -1;
    this.#heap.length = 0;
    this.#disarm();
  }

  #remove(entry: Entry): void {
    const i = entry.index;
    if (i < 0) return;
    entry.index = -1;
    const last = this.#heap.pop() as Entry;
    if (i < this.#heap.length) {
      this.#heap[i] = last;
      last.index = i;
      this.#siftDown(i);
      this.#siftUp(last.index);
    }
    // An earlier timer than needed is harmless (it finds nothing due and re-arms);
    // only an idle heap gives its timer back.
    if (this.#heap.length === 0) this.#disarm();
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
  }

  #fire(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = this.#clock.now();
    const due: Entry[] = [];
    while (this.#heap.length > 0 && this.#heap[0].at <= now) {
      const entry = this.#heap[0];
      this.#remove(entry);
      due.push(entry);
    }
    if (this.#heap.length > 0) this.#arm(this.#heap[0].at);
    for (const entry of due) entry.callback();
  }

  #before(a: Entry, b: Entry): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  #swap(i: number, j: number): void {
    const heap = this.#heap;
    [heap[i], heap[j]] = [heap[j], heap[i]];
    heap[i].index = i;
    heap[j].index = j;
  }

  #siftUp(i: number): void {
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.#before(this.#heap[i], this.#heap[parent])) return;
      this.#swap(i, parent);
      i = parent;
    }
  }

  #siftDown(i: number): void {
    const heap = this.#heap;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let smallest = i;
      if (left < heap.length && this.#before(heap[left], heap[smallest])) smallest = left;
      if (right < heap.length && this.#before(heap[right], heap[smallest])) smallest = right;
      if (smallest === i) return;
      this.#swap(i, smallest);
      i = smallest;
    }
  }
}
