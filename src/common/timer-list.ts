// Timeouts for the per-request path. A proxied request arms and cancels up to
// three timeouts (route timeout, upstream headers timeout, the upstream
// connection's idle timeout); with setTimeout each one costs a Timeout
// object, a lookup of Node's per-duration list in an integer-keyed object
// (a hashed dictionary lookup) and the same again to cancel it: ~5 % of a
// worker's instructions per request, measured with bench:instructions.
//
// A TimerList does what Node's timers do inside (one list per duration,
// ordered by deadline because every entry has the same duration, one timer
// for the head) without those costs: add and remove are a few pointer
// moves, entries are reused, and the list's one Node timer is re-armed only
// when it fires. A timeout fires at most a millisecond or two after
// setTimeout's would.

/** One pending timeout; reuse it (add again) for the owner's next one. */
export class TimerEntry {
  /** @internal */ prev: TimerEntry | undefined;
  /** @internal */ next: TimerEntry | undefined;
  /** @internal */ at = 0;
  /** @internal */ list: TimerList | undefined;

  constructor(readonly fire: () => void) {}

  get armed(): boolean {
    return this.list !== undefined;
  }

  /** Cancels it if armed. */
  cancel(): void {
    this.list?.remove(this);
  }
}

export class TimerList {
  #head: TimerEntry | undefined;
  #tail: TimerEntry | undefined;
  #timer: NodeJS.Timeout | undefined;
  /** Inside #expire: it arms the timer for the head when done. */
  #expiring = false;

  constructor(readonly ms: number) {
    if (!(ms > 0)) throw new Error(`TimerList: a duration > 0 ms is needed, got ${ms}`);
  }

  /** Arms `e` to fire in `ms` (moving it here from wherever it was armed). */
  add(e: TimerEntry): void {
    if (e.list) e.list.remove(e);
    e.at = performance.now() + this.ms;
    e.list = this;
    e.prev = this.#tail;
    e.next = undefined;
    if (this.#tail) this.#tail.next = e;
    else this.#head = e;
    this.#tail = e;
    if (!this.#timer && !this.#expiring) this.#arm(this.ms);
  }

  remove(e: TimerEntry): void {
    if (e.list !== this) return;
    if (e.prev) e.prev.next = e.next;
    else this.#head = e.next;
    if (e.next) e.next.prev = e.prev;
    else this.#tail = e.prev;
    e.prev = e.next = e.list = undefined;
    // The Node timer stays: when it fires with nothing due it re-arms for
    // the new head, or stops when the list is empty.
  }

  #arm(ms: number): void {
    this.#timer = setTimeout(() => this.#expire(), Math.max(1, Math.ceil(ms)));
    // The sockets and IPC a timeout guards keep the process alive, not this.
    this.#timer.unref();
  }

  #expire(): void {
    this.#timer = undefined;
    this.#expiring = true;
    const now = performance.now();
    try {
      let e: TimerEntry | undefined;
      while ((e = this.#head) && e.at <= now) {
        this.remove(e);
        e.fire();
      }
    } finally {
      this.#expiring = false;
      if (this.#head) this.#arm(this.#head.at - now);
    }
  }
}

const lists = new Map<number, TimerList>();

/** The shared list for timeouts of `ms` milliseconds. */
export function timerList(ms: number): TimerList {
  let l = lists.get(ms);
  if (!l) lists.set(ms, (l = new TimerList(ms)));
  return l;
}
