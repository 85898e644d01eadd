// Live updates: the store's changes from GET /api/events (server-sent
// events), applied in batches. EventSource reconnects by itself after a
// drop and sends Last-Event-ID, so the server resends what was missed.

/** How long changes gather before the map is updated, in ms. */
export const BATCH_MS = 500;
/** How long to wait before opening a stream the server refused, in ms. */
const REOPEN_MS = 10_000;

export class LiveUpdates {
  /**
   * @param {number} after the id of the newest event the map shows
   * @param {() => Promise<void>} apply updates the map (called at most once per batch)
   * @param {(state: "live" | "reconnecting") => void} status told when the connection changes
   */
  constructor(after, apply, status) {
    this.after = after;
    this.apply = apply;
    this.status = status;
    this.pending = 0;
    this._timer = 0;
    this._open();
  }

  _open() {
    const source = new EventSource(`/api/events?after=${this.after}`);
    this.source = source;
    source.onopen = () => {
      this.status("live");
    };
    source.onmessage = (event) => {
      if (event.lastEventId) this.after = Number(event.lastEventId);
      this.pending += 1;
      if (this._timer === 0) this._timer = window.setTimeout(() => this._flush(), BATCH_MS);
    };
    source.onerror = () => {
      this.status("reconnecting");
      if (source.readyState === EventSource.CLOSED) {
        // Refused (a 503, say): EventSource gives up; we do not.
        window.setTimeout(() => this._open(), REOPEN_MS);
      }
    };
  }

  async _flush() {
    if (this.pending === 0) {
      this._timer = 0;
      return;
    }
    this.pending = 0;
    const started = performance.now();
    try {
      await this.apply();
    } finally {
      // A big graph takes long to load and merge: then batches are
      // longer, so that the page spends at most a quarter of its time on it.
      const wait = Math.max(BATCH_MS, 3 * (performance.now() - started));
      this._timer = window.setTimeout(() => this._flush(), wait);
    }
  }

  close() {
    this.source.close();
  }
}
