// A list of the domains on the map for screen readers and keyboards:
// visually hidden until it holds the keyboard focus.
import { h } from "./dom.js";

/** The most domains listed (more are reached by the search). */
const MOST = 1000;

export class ListView {
  /** @param {(id: string) => void} focus focuses a domain */
  constructor(focus) {
    this.focus = focus;
    this.list = h("ul", {});
    this.note = h("p", {});
    this.element = h(
      "nav",
      { class: "domain-list visually-hidden-until-focus", "aria-labelledby": "domain-list-title" },
      h("h2", { id: "domain-list-title" }, "Domains on the map"),
      this.note,
      this.list,
    );
  }

  /**
   * @param {import("graphology").default} graph
   * @param {string | null} focused the focused domain: then its peers are listed
   */
  update(graph, focused) {
    let ids = graph.filterNodes((_, attributes) => attributes.label !== null);
    if (focused !== null && graph.hasNode(focused)) {
      const near = new Set(graph.neighbors(focused));
      ids = ids.filter((id) => id === focused || near.has(id));
    }
    ids.sort();
    const shown = ids.slice(0, MOST);
    this.note.textContent =
      (focused !== null ? `${focused} and its named peers: ` : "") +
      `${ids.length} domains` +
      (ids.length > shown.length ? `, the first ${shown.length} listed (the search finds the others)` : "");
    this.list.replaceChildren(
      ...shown.map((id) =>
        h(
          "li",
          {},
          h("button", { type: "button", "aria-pressed": String(id === focused), onclick: () => this.focus(id) }, id, ` (${graph.degree(id)} peers)`),
        ),
      ),
    );
  }
}
