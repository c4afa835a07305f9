/** The last lines an engine wrote, at most `size` of them: `engines logs NAME`. */
export class LogRing {
  readonly #lines: string[] = [];
  #dropped = 0;
  constructor(readonly size: number) {}

  push(line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > this.size) {
      this.#lines.shift();
      this.#dropped++;
    }
  }

  /** The kept lines, oldest first; `last` limits them to the newest few. */
  lines(last = this.size): string[] {
    return this.#lines.slice(-Math.max(0, last));
  }

  /** Lines pushed out of the ring since the daemon started. */
  get dropped(): number {
    return this.#dropped;
  }

  /** The newest few lines in one string, for a start failure's reason. */
  tail(n: number): string {
    return this.lines(n).join(" | ");
  }
}
