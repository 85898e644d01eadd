// The statistics view (/stats): the figures of /api/stats, the degree
// distribution as a plot, the largest hubs, the software mix, the security
// posture, and the exports of the graph.
import { getJSON } from "./api.js";
import { formatCount, formatShare, h, openView, s } from "./dom.js";

/** The graph's exports: [URL, text, what it is for]. */
export const EXPORTS = [
  ["/api/graph.graphml", "GraphML", "for Gephi, networkx (read_graphml), igraph, yEd"],
  ["/api/graph.gexf", "GEXF", "for Gephi and networkx (read_gexf)"],
  ["/api/graph", "JSON", "this node's API: nodes, edges, positions (see /api/openapi.json)"],
];

/** Show the statistics. */
export async function showStats() {
  const view = openView("Statistics");
  view.append(h("h2", { text: "Statistics of the federation" }));
  const status = h("p.note", { role: "status", text: "Loading…" });
  view.append(status);
  let stats;
  try {
    stats = await getJSON("/api/stats");
  } catch (error) {
    status.textContent = `The statistics could not be loaded: ${error.message}`;
    document.documentElement.dataset.state = "drawn";
    return;
  }
  status.textContent = `As of ${new Date(stats.at).toLocaleString("en")}: the current graph as the map shows it.`;
  view.append(
    figures(stats),
    section("Degree distribution", degreePlot(stats.degree_distribution)),
    section("Largest hubs", hubs(stats.hubs)),
    section("Server software", software(stats.software, stats.domains.publishing)),
    section("Security of the streams", security(stats.security)),
    section("Export the graph", exports()),
  );
  document.documentElement.dataset.state = "drawn";
}

/**
 * @param {string} title
 * @param {...Node} content
 * @returns {HTMLElement}
 */
function section(title, ...content) {
  return h("section.panel", null, h("h3", { text: title }), ...content);
}

/**
 * @param {string} name the figure's key (data-figure, which tests read)
 * @param {string} label
 * @param {string} value
 * @param {string} [hint]
 * @returns {HTMLElement}
 */
function figure(name, label, value, hint) {
  return h(
    "div.figure",
    null,
    h("dt", { text: label }),
    h("dd", null, h("span.value", { "data-figure": name, text: value }), hint && h("span.hint", { text: hint })),
  );
}

/** @param {any} stats @returns {HTMLElement} the headline figures */
function figures(stats) {
  const d = stats.domains;
  const anonymous = "peers that publishers report without a name (they have not consented)";
  return h(
    "dl.figures",
    null,
    figure("named", "Named domains", formatCount(d.named)),
    figure("anonymous", "Anonymous peers", formatCount(d.anonymous), anonymous),
    figure("publishing", "Publish server information", formatCount(d.publishing), formatShare(d.publishing, d.named) + " of the named"),
    figure("stale", "Stale", formatCount(d.stale), "not seen lately: off the map, kept in its history"),
    figure("known", "Known to the crawler", formatCount(d.known)),
    figure("links", "Links", formatCount(stats.links)),
    figure("confirmed", "Confirmed links", formatShare(stats.confirmed_links, stats.links), `${formatCount(stats.confirmed_links)} reported by both ends`),
    figure("components", "Connected components", formatCount(stats.components.count), `the largest has ${formatCount(stats.components.largest)} domains`),
  );
}

/**
 * Bins of the degree distribution: degree 0, then powers of two (1, 2–3,
 * 4–7, ...), so that a heavy tail fits.
 * @param {{degree: number, nodes: number}[]} distribution
 * @returns {{low: number, high: number, nodes: number}[]}
 */
export function binDegrees(distribution) {
  const bins = new Map();
  for (const { degree, nodes } of distribution) {
    const low = degree === 0 ? 0 : 2 ** Math.floor(Math.log2(degree));
    const bin = bins.get(low) ?? { low, high: low === 0 ? 0 : 2 * low - 1, nodes: 0 };
    bin.nodes += nodes;
    bins.set(low, bin);
  }
  return [...bins.values()].sort((a, b) => a.low - b.low);
}

/**
 * The degree distribution as bars on a logarithmic count axis, with the
 * numbers in a table for screen readers and copying.
 * @param {{degree: number, nodes: number}[]} distribution
 * @returns {HTMLElement}
 */
function degreePlot(distribution) {
  const bins = binDegrees(distribution);
  if (bins.length === 0) return h("p", { text: "No domains yet." });
  const width = 640;
  const height = 240;
  const left = 48;
  const bottom = 40;
  const top = 28;
  const most = Math.max(...bins.map((bin) => bin.nodes));
  const decades = Math.max(1, Math.ceil(Math.log10(most + 1)));
  const scale = Math.log10(10 ** decades + 1);
  const y = (/** @type {number} */ n) => height - bottom - ((height - bottom - top) * Math.log10(n + 1)) / scale;
  const step = (width - left) / bins.length;
  const label = (/** @type {{low: number, high: number}} */ bin) =>
    bin.low === bin.high ? String(bin.low) : `${bin.low}–${bin.high}`;
  const svg = s(
    "svg.plot",
    {
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-labelledby": "degree-title",
      "data-plot": "degree",
    },
    s("title", { id: "degree-title", text: "Domains by number of links (degree), logarithmic count axis" }),
  );
  for (const n of [0, ...Array.from({ length: decades + 1 }, (_, d) => 10 ** d)]) {
    const at = y(n);
    if (n > 0) svg.append(s("line.grid", { x1: left, x2: width, y1: at, y2: at }));
    svg.append(s("text.tick", { x: left - 6, y: at + 4, "text-anchor": "end", text: formatCount(n) }));
  }
  bins.forEach((bin, i) => {
    const x = left + i * step + step * 0.1;
    const barTop = y(bin.nodes);
    const bar = s("rect.bar", {
      x,
      y: barTop,
      width: step * 0.8,
      height: height - bottom - barTop,
      "data-degree": label(bin),
      "data-nodes": bin.nodes,
    });
    bar.append(s("title", { text: `degree ${label(bin)}: ${formatCount(bin.nodes)} domains` }));
    svg.append(bar);
    svg.append(s("text.tick", { x: x + step * 0.4, y: height - bottom + 16, "text-anchor": "middle", text: label(bin) }));
  });
  svg.append(s("line.axis", { x1: left, x2: width, y1: height - bottom, y2: height - bottom }));
  svg.append(s("text.axis-label", { x: (left + width) / 2, y: height - 6, "text-anchor": "middle", text: "links per domain" }));
  svg.append(s("text.axis-label", { x: 4, y: 14, "text-anchor": "start", text: "domains" }));
  const table = h(
    "table",
    null,
    h("thead", null, h("tr", null, h("th", { scope: "col", text: "Links" }), h("th", { scope: "col", text: "Domains" }))),
    h("tbody", null, distribution.map(({ degree, nodes }) => h("tr", null, h("td", { text: degree }), h("td", { text: formatCount(nodes) })))),
  );
  return h("div", null, svg, h("details", null, h("summary", { text: "The numbers" }), table));
}

/** @param {{domain: string, degree: number}[]} list @returns {HTMLElement} */
function hubs(list) {
  if (list.length === 0) return h("p", { text: "No links yet." });
  return h(
    "ol.hubs",
    null,
    list.map(({ domain, degree }) =>
      h("li", null, h("a", { href: `/?focus=${encodeURIComponent(domain)}`, text: domain }), h("span.hint", { text: ` ${formatCount(degree)} ${degree === 1 ? "link" : "links"}` })),
    ),
  );
}

/**
 * A row with a share bar.
 * @param {string} label
 * @param {number} part
 * @param {number} whole
 * @returns {HTMLElement}
 */
function shareRow(label, part, whole) {
  const bar = h("span.fill");
  bar.style.width = whole ? `${(100 * part) / whole}%` : "0";
  return h(
    "tr",
    null,
    h("th", { scope: "row", text: label }),
    h("td.num", { text: formatCount(part) }),
    h("td.num", { text: formatShare(part, whole) }),
    h("td.share", null, h("span.track", null, bar)),
  );
}

/**
 * @param {string[]} headings
 * @param {HTMLElement[]} rows
 * @returns {HTMLElement}
 */
function shareTable(headings, rows) {
  return h(
    "table.shares",
    null,
    h(
      "thead",
      null,
      h("tr", null, headings.map((text, i) => h(i ? "th.num" : "th", { scope: "col", text })), h("th", { scope: "col", text: "" })),
    ),
    h("tbody", null, rows),
  );
}

/**
 * The software mix: by name (the diversity), then by name and version.
 * @param {{name: string, version: string | null, domains: number}[]} mix
 * @param {number} publishing how many publish
 * @returns {HTMLElement}
 */
function software(mix, publishing) {
  const told = mix.reduce((sum, entry) => sum + entry.domains, 0);
  if (told === 0) return h("p", { text: "No publisher has told us its software (XEP-0092) yet." });
  const names = new Map();
  for (const { name, domains } of mix) names.set(name, (names.get(name) ?? 0) + domains);
  const byName = [...names].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  return h(
    "div",
    null,
    h("p.note", { text: `${formatCount(told)} of ${formatCount(publishing)} publishing domains name their software (XEP-0092 software version).` }),
    shareTable(["Software", "Domains", "Share"], byName.map(([name, n]) => shareRow(name, n, told))),
    h(
      "details",
      null,
      h("summary", { text: "By version" }),
      shareTable(
        ["Software and version", "Domains", "Share"],
        mix.map((entry) => shareRow(`${entry.name} ${entry.version ?? "(no version)"}`, entry.domains, told)),
      ),
    ),
  );
}

/** How the API's authentication methods read. */
const METHODS = { "sasl-external": "certificate (SASL EXTERNAL)", dialback: "dialback" };

/**
 * The security posture of the streams.
 * @param {any} posture /api/stats's `security`
 * @returns {HTMLElement}
 */
function security(posture) {
  const n = posture.domains;
  if (n === 0) return h("p", { text: "Our streams have reached no named domain yet." });
  const byCertificate = posture.auth.find((/** @type {any} */ a) => a.method === "sasl-external")?.domains ?? 0;
  return h(
    "div",
    null,
    h("p.note", { text: `Over the ${formatCount(n)} named domains this node's own streams reached.` }),
    h(
      "dl.figures",
      null,
      figure("sasl-external", "Authenticated by certificate", formatShare(byCertificate, n), "SASL EXTERNAL; the rest by dialback"),
      figure("cert-valid", "Valid certificate", formatShare(posture.cert_valid, n)),
      figure("direct-tls", "Offer direct TLS", formatShare(posture.direct_tls, n), "XEP-0368"),
    ),
    shareTable(["TLS version", "Domains", "Share"], posture.tls_versions.map((/** @type {any} */ t) => shareRow(t.version ?? "no TLS", t.domains, n))),
    shareTable(["Authentication", "Domains", "Share"], posture.auth.map((/** @type {any} */ a) => shareRow(METHODS[a.method] ?? a.method, a.domains, n))),
  );
}

/** @returns {HTMLElement} the export links */
function exports() {
  return h(
    "ul.exports",
    null,
    EXPORTS.map(([href, text, what]) => h("li", null, h("a", { href, download: true, text }), h("span.hint", { text: ` ${what}` }))),
  );
}
