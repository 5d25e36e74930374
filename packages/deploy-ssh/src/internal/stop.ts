/** Fires once, with the error that stops an operation (abort, timeout, close). */
export class Stop {
  readonly promise: Promise<Error>;
  fired: Error | undefined;
  private resolve!: (error: Error) => void;
  constructor() {
    this.promise = new Promise((resolve) => {
      this.resolve = resolve;
    });
  }
  fire(error: Error): void {
    if (this.fired) return;
    this.fired = error;
    this.resolve(error);
  }
}

/** Settles with `work`, or rejects with the stop's error if it fires first. */
export function raceStop<T>(work: Promise<T>, stop: Stop): Promise<T> {
  return Promise.race([
    work,
    stop.promise.then((error) => {
      throw error;
    }),
  ]);
}
