/** A counting semaphore whose waiters can give up (abort, timeout, close). */
export class Limiter {
  private active = 0;
  private readonly waiting: { grant: () => void }[] = [];

  constructor(private capacity: number) {}

  /** How many holders there are now. */
  get inUse(): number {
    return this.active;
  }

  /** Lowers (never below 1) or raises the capacity; waiters are let in as room appears. */
  setCapacity(capacity: number): void {
    this.capacity = Math.max(1, capacity);
    this.pump();
  }

  get limit(): number {
    return this.capacity;
  }

  /**
   * Waits for a slot. Resolves with a release function (call it once). `cancelled` rejects the
   * wait with the reason it gives, when it fires before a slot is free.
   */
  acquire(cancelled?: Promise<Error>): Promise<() => void> {
    return new Promise((resolve, reject) => {
      let released = false;
      const release = (): void => {
        if (released) return;
        released = true;
        this.active--;
        this.pump();
      };
      const waiter = {
        grant: () => {
          this.active++;
          resolve(release);
        },
      };
      this.waiting.push(waiter);
      cancelled?.then(
        (reason) => {
          const index = this.waiting.indexOf(waiter);
          if (index >= 0) {
            this.waiting.splice(index, 1);
            reject(reason);
          }
        },
        () => {},
      );
      this.pump();
    });
  }

  private pump(): void {
    while (this.active < this.capacity && this.waiting.length > 0) {
      this.waiting.shift()?.grant();
    }
  }
}
