/** In-flight request counts per service, read by heartbeats and the status server. */
export class LoadTracker {
  readonly #inFlight = new Map<string, number>();
  total = 0;

  begin(service: string): () => void {
    this.#inFlight.set(service, (this.#inFlight.get(service) ?? 0) + 1);
    this.total++;
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      this.#inFlight.set(service, (this.#inFlight.get(service) ?? 1) - 1);
      this.total--;
    };
  }

  inFlight(service: string): number {
    return this.#inFlight.get(service) ?? 0;
  }
}
