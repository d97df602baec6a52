/**
 * The fleet's recent events, for the status page and `/internal/events`: endpoint status
 * changes, breakers opening, failovers, endpoints added and removed, and configuration
 * reloads. The last 100 are kept; listeners (the page's live stream) get each as it
 * happens. Event fields are operator-controlled text (names, errors): the page escapes
 * them, and errors pass through the redactor before they get here.
 *
 * @module
 */

/** One event. */
export interface FleetEvent {
  /** Sequence number, increasing from 1 (an SSE client resumes after the last it saw). */
  readonly id: number;
  /** Unix ms. */
  readonly at: number;
  readonly kind:
    | "status"
    | "breaker_open"
    | "failover"
    | "endpoint_added"
    | "endpoint_removed"
    | "reload"
    | "operator";
  readonly endpoint?: string;
  readonly detail: string;
}

/** The feed. */
export class EventFeed {
  readonly #events: FleetEvent[] = [];
  readonly #listeners = new Set<(event: FleetEvent) => void>();
  readonly #capacity: number;
  readonly #now: () => number;
  #next = 1;
  #closed = false;
  readonly #enders = new Set<() => void>();

  constructor(now: () => number, capacity = 100) {
    this.#now = now;
    this.#capacity = capacity;
  }

  push(kind: FleetEvent["kind"], detail: string, endpoint?: string): void {
    const event: FleetEvent = { id: this.#next++, at: this.#now(), kind, endpoint, detail };
    this.#events.push(event);
    if (this.#events.length > this.#capacity) this.#events.shift();
    for (const listener of this.#listeners) listener(event);
  }

  /** The kept events, oldest first; only those after `afterId` when given. */
  recent(afterId = 0): FleetEvent[] {
    return this.#events.filter((event) => event.id > afterId);
  }

  /** Calls `listener` with every new event; returns the unsubscribe function. */
  subscribe(listener: (event: FleetEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Live listeners (open event streams). */
  get listeners(): number {
    return this.#listeners.size;
  }

  /**
   * Tells every open stream to end (at shutdown, so they do not hold it up) and refuses
   * new ones: `subscribe` after this returns a listener that is already closed.
   */
  close(): void {
    this.#closed = true;
    for (const end of this.#enders) end();
    this.#enders.clear();
    this.#listeners.clear();
  }

  /** Calls `end` when the feed closes; returns the function that cancels that. */
  onClose(end: () => void): () => void {
    if (this.#closed) {
      end();
      return () => {};
    }
    this.#enders.add(end);
    return () => this.#enders.delete(end);
  }
}
