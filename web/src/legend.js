// The legend: what the colours and sizes mean, with live counts.
import { h } from "./dom.js";
import { KINDS } from "./graph.js";

/**
 * @param {import("graphology").default} graph
 * @returns {{publisher: number, named: number, anonymous: number, links: number, confirmed: number}}
 *   how many of each kind the map shows (a combined anonymous node counts
 *   for every peer it stands for)
 */
export function countKinds(graph) {
  const counts = { publisher: 0, named: 0, anonymous: 0, links: graph.size, confirmed: 0 };
  graph.forEachNode((_, attributes) => {
    counts[attributes.kind] += attributes.kind === "anonymous" ? attributes.anonymous || 1 : 1;
  });
  graph.forEachEdge((_, attributes) => {
    if (attributes.confirmed) counts.confirmed += 1;
  });
  return counts;
}

export class Legend {
  constructor() {
    /** @type {Record<string, HTMLElement>} */
    this.numbers = {};
    const rows = Object.entries(KINDS).map(([kind, { color, label }]) => {
      this.numbers[kind] = h("span", { class: "count", "data-kind": kind }, "0");
      return h("li", {}, h("span", { class: `swatch swatch-${kind}`, "aria-hidden": "true" }), this.numbers[kind], ` ${label}`);
    });
    this.numbers.links = h("span", { class: "count", "data-kind": "links" }, "0");
    this.numbers.confirmed = h("span", { class: "count", "data-kind": "confirmed" }, "0");
    rows.push(
      h("li", {}, h("span", { class: "swatch swatch-link", "aria-hidden": "true" }), this.numbers.links, " links, ", this.numbers.confirmed, " confirmed by both ends"),
    );
    rows.push(h("li", { class: "muted" }, "Bigger: more peers. ", h("span", { class: "fresh-sample", "aria-hidden": "true" }), " just arrived"));
    this.element = h("section", { class: "map-legend", "aria-label": "Legend" }, h("ul", {}, ...rows));
    this.summary = document.getElementById("counts");
  }

  /** @param {import("graphology").default} graph */
  update(graph) {
    const counts = countKinds(graph);
    for (const [kind, element] of Object.entries(this.numbers)) element.textContent = String(counts[kind]);
    const named = counts.publisher + counts.named;
    this.summary.textContent = `${named} named domains, ${counts.anonymous} anonymous, ${counts.links} links`;
  }
}
