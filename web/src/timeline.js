// The time slider over the stored history, with a play button: the map as
// it was at the chosen time. Its right end is now: the live map.
import { h } from "./dom.js";

/** Positions on the slider (its resolution). */
const STEPS = 500;
/** Frames of the play button's run from the oldest time to now. */
const FRAMES = 30;

export class Timeline {
  /**
   * @param {(at: number | null) => Promise<void>} show shows the map at a
   *   time (seconds since the epoch), or null for now
   */
  constructor(show) {
    this.show = show;
    this.oldest = Date.now() / 1000;
    this.input = h("input", {
      id: "timeline",
      type: "range",
      min: "0",
      max: String(STEPS),
      step: "1",
      value: String(STEPS),
      "aria-label": "Time: the map as it was",
    });
    this.output = h("output", { for: "timeline", class: "timeline-at" }, "now");
    this.play = h("button", { type: "button", class: "play", "aria-pressed": "false" }, "Play history");
    this.element = h("div", { class: "map-timeline", role: "group", "aria-label": "History" }, this.play, this.input, this.output);
    this._debounce = 0;
    this._playing = false;
    this.input.addEventListener("input", () => {
      this._stopPlaying();
      this._label();
      window.clearTimeout(this._debounce);
      this._debounce = window.setTimeout(() => this.show(this.at()), 150);
    });
    this.play.addEventListener("click", () => (this._playing ? this._stopPlaying() : this._play()));
    this._label();
  }

  /** @param {number} oldest the oldest time the history holds (seconds since the epoch) */
  setRange(oldest) {
    this.oldest = Math.min(oldest, Date.now() / 1000);
    this._label();
  }

  /** @returns {number | null} the chosen time, or null for now */
  at() {
    const value = Number(this.input.value);
    if (value >= STEPS) return null;
    const now = Date.now() / 1000;
    return this.oldest + ((now - this.oldest) * value) / STEPS;
  }

  /**
   * @param {number} at a time (seconds since the epoch)
   * @returns {number} the slider position that shows it
   */
  valueFor(at) {
    const now = Date.now() / 1000;
    return Math.max(0, Math.min(STEPS, Math.round((STEPS * (at - this.oldest)) / (now - this.oldest || 1))));
  }

  _label() {
    const at = this.at();
    const text = at === null ? "now (live)" : new Date(at * 1000).toISOString().replace(/\.\d+Z$/, "Z");
    this.output.textContent = text;
    this.input.setAttribute("aria-valuetext", text);
  }

  async _play() {
    this._playing = true;
    this.play.setAttribute("aria-pressed", "true");
    this.play.textContent = "Pause";
    for (let frame = 0; frame <= FRAMES && this._playing; frame++) {
      this.input.value = String(Math.round((STEPS * frame) / FRAMES));
      this._label();
      await this.show(this.at());
      await new Promise((resolve) => window.setTimeout(resolve, 300));
    }
    this._stopPlaying();
  }

  _stopPlaying() {
    this._playing = false;
    this.play.setAttribute("aria-pressed", "false");
    this.play.textContent = "Play history";
  }
}
