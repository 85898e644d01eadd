// The side panel of the focused domain: what GET /api/domains/{domain}
// says about it, in words. Every value from the API is text.
import { getJSON } from "./api.js";
import { ago, h } from "./dom.js";
import { edgeKey } from "./graph.js";

const AUTH = { "sasl-external": "SASL EXTERNAL (certificate)", dialback: "dialback" };
const WAYS = { reports: "it reports", "reported-by": "reports it" };

export class Panel {
  /**
   * @param {import("graphology").default} graph the map's graph
   * @param {(id: string | null) => void} focus focuses a domain (null: none)
   */
  constructor(graph, focus) {
    this.graph = graph;
    this.focus = focus;
    this.body = h("div", { class: "panel-body" });
    this.element = h(
      "aside",
      { id: "panel", class: "map-panel", "aria-labelledby": "panel-title", tabindex: "-1" },
      h("button", { type: "button", class: "panel-close", "aria-label": "Close", onclick: () => focus(null) }, "×"),
      this.body,
    );
    this.element.hidden = true;
    this._shown = 0;
  }

  /** @param {string | null} id the node to show, or null to close */
  async show(id) {
    const asked = ++this._shown;
    if (id === null) {
      this.element.hidden = true;
      this.body.replaceChildren();
      return;
    }
    this.element.hidden = false;
    const node = this.graph.hasNode(id) ? this.graph.getNodeAttributes(id) : null;
    if (node !== null && node.kind === "anonymous") {
      this.body.replaceChildren(...this._anonymous(id, node));
      return;
    }
    this.body.replaceChildren(title(id), h("p", { class: "muted" }, "Loading…"));
    let answer;
    try {
      answer = await getJSON(`/api/domains/${encodeURIComponent(id)}`);
    } catch (error) {
      if (asked === this._shown) this.body.replaceChildren(title(id), h("p", { class: "why" }, error.message));
      return;
    }
    if (asked === this._shown) this.body.replaceChildren(...this._domain(answer));
  }

  _anonymous(id, node) {
    const reporters = this.graph.neighbors(id).map((peer) => this.graph.getNodeAttribute(peer, "label") ?? peer);
    const many = node.anonymous > 1 ? `${node.anonymous} anonymous peers` : "An anonymous peer";
    return [
      title("Anonymous peer"),
      h(
        "p",
        { class: "why" },
        `${many}: a domain that has not consented to be named (its disco#info does not list urn:xmpp:serverinfo:0), so it is shown without its name.`,
      ),
      h("h3", {}, "Reported by"),
      this._peerList(reporters.map((name) => ({ peer: name }))),
    ];
  }

  _domain(answer) {
    const parts = [title(answer.domain)];
    parts.push(
      // The API's words start with "on the graph:" when it is.
      h("p", { class: answer.on_graph ? "why on" : "why off" }, answer.on_graph ? null : "Not on the graph: ", answer.why),
    );
    if (answer.folded_into) {
      parts.push(h("p", {}, "A service subdomain of ", this._peerButton(answer.folded_into), "; the map folds it into its parent."));
    }
    const members = this.graph.hasNode(answer.domain) ? this.graph.getNodeAttribute(answer.domain, "members") : undefined;
    if (Array.isArray(members) && members.length > 0) {
      parts.push(h("p", {}, "Its service subdomains are folded into it: ", members.join(", "), "."));
    }
    const facts = answer.facts;
    const record = answer.record;
    const rows = [];
    if (facts !== null) {
      rows.push(["Publishes server information", yesNo(facts.publishes)]);
      rows.push(["Consents to be named", yesNo(facts.consents)]);
      const software = [facts.software.name, facts.software.version].filter(Boolean).join(" ");
      rows.push(["Software", software || "unknown"]);
    }
    if (record !== null) {
      rows.push(["First seen", ago(record.first_seen)]);
      rows.push(["Last seen", ago(record.last_seen)]);
      rows.push(["Last fetched", ago(record.last_fetch)]);
      rows.push(["Facts unchanged since", ago(record.facts_since)]);
      rows.push(["Report last changed", ago(record.report_changed)]);
      rows.push(["Report last confirmed", ago(record.report_confirmed)]);
      if (record.stale) rows.push(["Stale", "yes: it left the current graph"]);
    }
    if (answer.crawl !== null) {
      rows.push(["Crawler", `${answer.crawl.state} (${answer.crawl.failures} failures)`]);
      rows.push(["Next fetch", ago(answer.crawl.next_fetch)]);
    }
    parts.push(table("Data", rows));
    if (facts !== null) {
      const stream = facts.stream;
      parts.push(
        table("What our streams saw", [
          ["TLS", stream.tls_version ?? "unknown"],
          ["Authenticated by", AUTH[stream.auth] ?? stream.auth ?? "unknown"],
          ["Certificate valid", yesNo(stream.cert_valid)],
          ["Direct TLS (XEP-0368)", yesNo(stream.direct_tls)],
        ]),
      );
      parts.push(h("h3", {}, "Discovery steps"));
      parts.push(
        h(
          "ol",
          { class: "steps" },
          ...facts.steps.map((step) =>
            h("li", { class: step.ok ? "ok" : "failed" }, h("span", { class: "visually-hidden" }, step.ok ? "done: " : "failed: "), h("strong", {}, step.step), " ", step.detail),
          ),
        ),
      );
    }
    parts.push(h("h3", {}, `Peers (${answer.peers.length})`));
    parts.push(this._peerList(answer.peers, answer.domain));
    parts.push(h("p", {}, h("a", { href: `/api/domains/${encodeURIComponent(answer.domain)}` }, "All of it as JSON")));
    return parts;
  }

  /**
   * @param {{peer: string | null, way?: string, directions?: string[]}[]} peers
   * @param {string} [domain] whose peers they are (to tell confirmed links)
   */
  _peerList(peers, domain) {
    if (peers.length === 0) return h("p", { class: "muted" }, "none");
    return h(
      "ul",
      { class: "peers" },
      ...peers.map((peer) => {
        const confirmed =
          domain !== undefined && peer.peer !== null && this.graph.hasEdge(edgeKey(domain, peer.peer))
            ? this.graph.getEdgeAttribute(edgeKey(domain, peer.peer), "confirmed")
            : null;
        return h(
          "li",
          {},
          peer.peer === null ? h("span", { class: "muted" }, "an anonymous peer") : this._peerButton(peer.peer),
          peer.way ? ` — ${WAYS[peer.way] ?? peer.way}` : null,
          peer.directions?.length ? ` (${peer.directions.join(", ")})` : null,
          confirmed === null ? null : confirmed ? " · confirmed by both" : " · one side only",
        );
      }),
    );
  }

  /** @param {string} name @returns {HTMLElement} a link that focuses name */
  _peerButton(name) {
    return h(
      "a",
      {
        href: `/?focus=${encodeURIComponent(name)}`,
        class: "peer",
        onclick: (event) => {
          event.preventDefault();
          this.focus(name);
        },
      },
      name,
    );
  }
}

/** @param {string} text @returns {HTMLElement} */
function title(text) {
  return h("h2", { id: "panel-title" }, text);
}

/** @param {boolean | null} value @returns {string} */
function yesNo(value) {
  return value === true ? "yes" : value === false ? "no" : "unknown";
}

/**
 * @param {string} caption
 * @param {[string, Node | string][]} rows
 * @returns {HTMLElement}
 */
function table(caption, rows) {
  return h(
    "table",
    { class: "facts" },
    h("caption", {}, caption),
    h("tbody", {}, ...rows.map(([name, value]) => h("tr", {}, h("th", { scope: "row" }, name), h("td", {}, value)))),
  );
}
