// What stands out on the map: the focused domain with its neighbours (the
// rest dimmed), and what just arrived live (a highlight colour that fades).
// Both are sigma reducers: the graph's own attributes stay as they are.

const DIM_NODE = "#e6e8ec";
const DIM_EDGE = "#f0f1f4";
const FOCUS_EDGE = "#57606a";
const FRESH = [255, 140, 0];
/** How long a new domain or link stays marked, in ms. */
export const FRESH_FOR = 4000;

export class Emphasis {
  /**
   * @param {import("sigma").default} renderer
   */
  constructor(renderer) {
    this.renderer = renderer;
    this.graph = renderer.getGraph();
    /** @type {string | null} */
    this.focused = null;
    /** @type {Set<string>} */
    this.neighbours = new Set();
    /** @type {Map<string, number>} node or edge key -> when it was marked */
    this.fresh = new Map();
    this._timer = 0;
    renderer.setSetting("nodeReducer", (id, data) => this._node(id, data));
    renderer.setSetting("edgeReducer", (key, data) => this._edge(key, data));
  }

  /** @param {string | null} id the node to focus, or null for none */
  focus(id) {
    this.focused = id !== null && this.graph.hasNode(id) ? id : null;
    this.refreshNeighbours();
  }

  /** Recompute the focused node's neighbours (after the graph changed). */
  refreshNeighbours() {
    if (this.focused !== null && !this.graph.hasNode(this.focused)) this.focused = null;
    this.neighbours = new Set(this.focused === null ? [] : this.graph.neighbors(this.focused));
    this.renderer.refresh({ skipIndexation: true });
  }

  /** @param {{nodes: string[], edges: string[]}} added what to mark as new */
  mark(added) {
    const now = performance.now();
    for (const id of added.nodes) this.fresh.set(`n:${id}`, now);
    for (const key of added.edges) this.fresh.set(`e:${key}`, now);
    if (this.fresh.size > 0 && this._timer === 0) {
      this._timer = window.setInterval(() => this._fade(), 200);
    }
  }

  _fade() {
    const now = performance.now();
    for (const [key, at] of this.fresh) if (now - at > FRESH_FOR) this.fresh.delete(key);
    if (this.fresh.size === 0) {
      window.clearInterval(this._timer);
      this._timer = 0;
    }
    this.renderer.refresh({ skipIndexation: true });
  }

  /** @param {string} key @param {string} color @returns {string} color mixed with the highlight as key's age says */
  _freshColor(key, color) {
    const at = this.fresh.get(key);
    if (at === undefined) return color;
    const weight = Math.max(0, 1 - (performance.now() - at) / FRESH_FOR);
    const base = [1, 3, 5].map((i) => parseInt(color.slice(i, i + 2), 16));
    const mixed = base.map((c, i) => Math.round(c + (FRESH[i] - c) * weight));
    return `#${mixed.map((c) => c.toString(16).padStart(2, "0")).join("")}`;
  }

  _node(id, data) {
    const shown = { ...data, color: this._freshColor(`n:${id}`, data.color) };
    if (this.fresh.has(`n:${id}`)) shown.forceLabel = true;
    if (this.focused === null) return shown;
    if (id === this.focused) return { ...shown, highlighted: true, forceLabel: true, zIndex: 2 };
    if (this.neighbours.has(id)) return { ...shown, forceLabel: true, zIndex: 1 };
    return { ...shown, color: DIM_NODE, label: null, zIndex: 0 };
  }

  _edge(key, data) {
    const shown = { ...data, color: this._freshColor(`e:${key}`, data.color) };
    if (this.fresh.has(`e:${key}`)) shown.size = Math.max(2, data.size);
    if (this.focused === null) return shown;
    const [a, b] = this.graph.extremities(key);
    if (a === this.focused || b === this.focused) return { ...shown, color: FOCUS_EDGE, size: 1.5, zIndex: 1 };
    return { ...shown, color: DIM_EDGE, zIndex: 0 };
  }
}
