// The "Add your server" view (/add): how to publish XEP-0485 server
// information with each server, a form that submits a domain to the
// crawler and then shows, step by step, what it found, and the badge.
import { APIError, send } from "./api.js";
import { h, openView } from "./dom.js";

/** How often and how many times the domain's page is asked while it is crawled. */
export const POLL = { everyMs: 2000, times: 45 };

/** Crawler states in which a fetch has ended. */
const SETTLED = new Set(["waiting", "backoff", "excluded"]);

/** The domain that the instructions and the badge name until one is submitted. */
const PLACEHOLDER = "example.org";

/** Show the view. */
export function showAdd() {
  const view = openView("Add your server");
  view.append(
    h("h2", { text: "Add your server" }),
    h("p", {
      text:
        "This map names a domain only when the domain itself consents: its service discovery " +
        "(disco#info) lists the feature urn:xmpp:serverinfo:0 (XEP-0485). It learns a domain's " +
        "links from the server information the domain publishes on its pub-sub service. " +
        "Set up one of the servers below, then check what the crawler sees.",
    }),
  );
  const check = checkForm();
  view.append(check.element, instructions(), check.badge.element);
  document.documentElement.dataset.state = "drawn";
}

/**
 * The form and its results.
 * @returns {{element: HTMLElement, badge: {element: HTMLElement, show: (domain: string) => void}}}
 */
function checkForm() {
  const input = h("input", {
    id: "domain",
    name: "domain",
    type: "text",
    required: true,
    autocomplete: "off",
    autocapitalize: "off",
    spellcheck: "false",
    inputmode: "url",
    placeholder: PLACEHOLDER,
    "aria-describedby": "domain-hint",
  });
  const button = h("button", { type: "submit", text: "Check" });
  const form = h(
    "form.check",
    { novalidate: true },
    h("label", { for: "domain", text: "Your XMPP domain" }),
    h("div.row", null, input, button),
    h("p.hint", { id: "domain-hint", text: "The domain of the addresses (user@domain), not a host name of a machine." }),
  );
  const result = h("div.result", { id: "result", role: "status", "aria-live": "polite" });
  const badge = badgeHint();
  /** @type {{cancelled: boolean} | null} */
  let run = null;
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (run) run.cancelled = true;
    const current = (run = { cancelled: false });
    button.disabled = true;
    try {
      await check(input.value.trim(), result, current, badge.show);
    } finally {
      if (current === run) button.disabled = false;
    }
  });
  return {
    element: h("section.panel", null, h("h3", { text: "Check your server" }), form, result),
    badge,
  };
}

/**
 * Submit a domain, then follow its crawl.
 * @param {string} domain as typed
 * @param {HTMLElement} result where to say what happens
 * @param {{cancelled: boolean}} run set when a newer submission replaces this one
 * @param {(domain: string) => void} showBadge
 */
async function check(domain, result, run, showBadge) {
  if (domain === "") {
    say(result, "error", "Type a domain first, e.g. example.org.");
    return;
  }
  say(result, "pending", `Submitting ${domain}…`);
  let outcome;
  try {
    outcome = (await send("/api/submit", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ domain }),
    })).body;
  } catch (error) {
    say(result, "error", submitError(error));
    return;
  }
  showBadge(outcome.domain);
  const queued = h("p.said", { "data-result": "submitted", text: outcome.message });
  const progress = h("p.note", { "data-result": "progress" });
  const found = h("div.found");
  result.replaceChildren(queued, progress, found);
  // A fetch is awaited unless none was queued (refused, or fetched a
  // moment ago): then what is known is the answer.
  const before = outcome.status?.last_fetch ?? null;
  const known = !outcome.accepted || SETTLED.has(outcome.status?.state);
  for (let attempt = 0; attempt < POLL.times; attempt++) {
    if (run.cancelled) return;
    let page = null;
    try {
      page = (await send(`/api/domains/${encodeURIComponent(outcome.domain)}`)).body;
    } catch (error) {
      if (!(error instanceof APIError) || error.status !== 404) {
        progress.textContent = `The crawler's answer could not be read: ${error.message}`;
        return;
      }
    }
    if (run.cancelled) return;
    if (page) found.replaceChildren(...describe(page));
    const crawl = page?.crawl;
    const settled = crawl && SETTLED.has(crawl.state) && (known || crawl.last_fetch !== before);
    if (page && (settled || !crawl)) {
      progress.textContent = "The crawl is done; this is what it found.";
      progress.dataset.state = "done";
      return;
    }
    progress.textContent = `Crawling ${outcome.domain}: ${crawl ? crawl.state : "waiting for its turn"}…`;
    await new Promise((resolve) => setTimeout(resolve, POLL.everyMs));
  }
  progress.textContent =
    "The crawl has not finished yet (a server that does not answer can take a while). " +
    "Check again in a few minutes.";
}

/**
 * @param {any} error a failed submission
 * @returns {string} what to tell the user
 */
function submitError(error) {
  if (!(error instanceof APIError)) return `The submission failed: ${error.message}`;
  if (error.status === 429) {
    const wait = error.retryAfter === null ? "" : ` (wait ${Math.ceil(error.retryAfter / 60)} minutes)`;
    return `Too many submissions from your address: ${error.message}${wait}.`;
  }
  if (error.status === 503) return `This node cannot check domains: ${error.message}.`;
  return error.message;
}

/**
 * @param {HTMLElement} result
 * @param {"pending" | "error"} kind
 * @param {string} text
 */
function say(result, kind, text) {
  result.replaceChildren(h(`p.said.${kind}`, { "data-result": kind, text }));
}

/** How the API's answers read for an admin. */
const AUTH = { "sasl-external": "SASL EXTERNAL (its certificate)", dialback: "dialback" };

/**
 * @param {boolean | null | undefined} value
 * @returns {string}
 */
function yesNo(value) {
  return value === true ? "yes" : value === false ? "no" : "unknown";
}

/**
 * What the crawler knows of a domain, in words.
 * @param {any} page the body of /api/domains/{domain}
 * @returns {HTMLElement[]}
 */
export function describe(page) {
  const parts = [
    h("h4", null, page.domain, page.on_graph ? " is on the map" : " is not on the map"),
    h("p", { "data-result": "why", text: page.why }),
  ];
  const facts = page.facts;
  if (facts && facts.steps.length) {
    parts.push(
      h("h5", { text: "What the crawler did" }),
      h(
        "ol.steps",
        { "data-result": "steps" },
        facts.steps.map((/** @type {any} */ step) =>
          h(
            `li.${step.ok ? "ok" : "failed"}`,
            null,
            h("span.mark", { "aria-hidden": "true", text: step.ok ? "✓" : "✗" }),
            h("span.visually-hidden", { text: step.ok ? "worked: " : "failed: " }),
            h("strong", { text: step.step }),
            ": ",
            step.detail,
          ),
        ),
      ),
    );
    const failed = facts.steps.find((/** @type {any} */ step) => !step.ok);
    if (failed && facts.steps.length > 1) parts.push(h("p.fix", null, h("strong", { text: "What to fix first: " }), `${failed.step}: ${failed.detail}`));
  } else if (facts?.error) {
    parts.push(h("p.fix", { text: facts.error }));
  }
  if (facts) {
    const stream = facts.stream;
    const software = facts.software.name ? `${facts.software.name} ${facts.software.version ?? ""}`.trim() : "not told";
    parts.push(
      h(
        "dl.facts",
        null,
        h("dt", { text: "Publishes server information" }),
        h("dd", { text: yesNo(facts.publishes) }),
        h("dt", { text: "Consents to be named" }),
        h("dd", { text: yesNo(facts.consents) }),
        h("dt", { text: "Software" }),
        h("dd", { text: software }),
        h("dt", { text: "Our stream" }),
        h("dd", {
          text: stream.auth
            ? `${stream.tls_version ?? "no TLS"}, authenticated by ${AUTH[stream.auth] ?? stream.auth}, certificate valid: ${yesNo(stream.cert_valid)}`
            : "none",
        }),
        h("dt", { text: "Direct TLS (XEP-0368)" }),
        h("dd", { text: yesNo(stream.direct_tls) }),
      ),
    );
  }
  const crawl = page.crawl;
  if (crawl?.next_fetch) {
    parts.push(h("p.note", { text: `Next fetch: ${new Date(crawl.next_fetch).toLocaleString("en")}.` }));
  }
  if (page.on_graph) {
    parts.push(h("p", null, h("a", { href: `/?focus=${encodeURIComponent(page.domain)}`, text: `Show ${page.domain} on the map` })));
  }
  return parts;
}

/**
 * @param {string} title
 * @param {string} intro
 * @param {string} code
 * @param {string} [after]
 * @returns {HTMLElement}
 */
function server(title, intro, code, after) {
  return h(
    "section.server",
    null,
    h("h4", { text: title }),
    h("p", { text: intro }),
    h("pre", null, h("code", { text: code })),
    after && h("p.note", { text: after }),
  );
}

/** @returns {HTMLElement} how to publish with each server */
function instructions() {
  const d = PLACEHOLDER;
  return h(
    "section.panel",
    null,
    h("h3", { text: "Publish your server information" }),
    h("p.note", {
      text: `Replace ${d} with your domain. Each way below lists urn:xmpp:serverinfo:0 (the consent) and publishes on the pub-sub node "serverinfo".`,
    }),
    server(
      "xmppnetgraph (this software)",
      "A node of this software publishes its links on pubsub.DOMAIN (node serverinfo) and consents by default (--no-opt-in turns that off); --no-crawl makes it only publish.",
      `twistd -n xmppnetgraph --domain ${d} \\\n  --tls-cert /etc/ssl/${d}/fullchain.pem --tls-key /etc/ssl/${d}/privkey.pem`,
      `Peers reach it through DNS: an _xmpp-server._tcp SRV record (or an A record) for ${d} and for pubsub.${d}, and a certificate valid for both.`,
    ),
    server(
      "Prosody 13",
      "The community module mod_pubsub_serverinfo (Debian and Ubuntu: the package prosody-modules; otherwise prosodyctl install --server=https://modules.prosody.im/rocks/ mod_pubsub_serverinfo) publishes on a pub-sub component as the domain, which must be an admin.",
      `admins = { "${d}" }\n\nVirtualHost "${d}"\n    modules_enabled = { "pubsub_serverinfo" }\n\nComponent "pubsub.${d}" "pubsub"`,
      "It publishes every 5 minutes at most (pubsub_serverinfo_publication_interval) and caches its peers' consent for an hour (pubsub_serverinfo_cache_ttl).",
    ),
    server(
      "ejabberd 25.07 or later",
      "The module mod_pubsub_serverinfo is part of ejabberd since 25.07; it needs mod_pubsub.",
      "modules:\n  mod_pubsub: {}\n  mod_pubsub_serverinfo: {}",
      "Its option pubsub_host names the pub-sub service to publish on, if not the default one. Streams opened before the module started are reported once they reconnect.",
    ),
    server(
      "Openfire",
      "The \"PubSub Server Info\" plugin (pubsubserverinfo) of Ignite Realtime: install it from the admin console's plugin page, or copy pubsubserverinfo.jar into Openfire's plugins directory.",
      "plugins/pubsubserverinfo.jar",
    ),
    server(
      "Tigase",
      "Tigase documents a \"PubSub Server Information\" feature, enabled in config.tdsl, that announces urn:xmpp:serverinfo:0 (the consent); see the Tigase administration guide for the lines of your version. Whether it publishes its server-to-server connections depends on the version: the check above tells you what the crawler finds.",
      "# config.tdsl: see the Tigase documentation, \"PubSub Server Information\"",
    ),
  );
}

/**
 * @param {string} text
 * @returns {string} text with &, <, > and " escaped for HTML
 */
function escapeHTML(text) {
  return text.replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" })[c]);
}

/**
 * The badge's embedding hint (for the placeholder until a domain is
 * submitted).
 * @returns {{element: HTMLElement, show: (domain: string) => void}}
 */
function badgeHint() {
  const html = h("code", { id: "badge-html" });
  const markdown = h("code", { id: "badge-markdown" });
  const copied = h("span.note", { role: "status", "aria-live": "polite" });
  /** @param {HTMLElement} code */
  const copyButton = (code) => {
    const button = h("button.copy", { type: "button", text: "Copy" });
    button.addEventListener("click", async () => {
      try {
        await navigator.clipboard.writeText(code.textContent ?? "");
        copied.textContent = "Copied.";
      } catch {
        getSelection()?.selectAllChildren(code);
        copied.textContent = "Selected: copy it with Ctrl+C.";
      }
    });
    return button;
  };
  /** @param {string} domain */
  const show = (domain) => {
    const origin = location.origin;
    const badge = `${origin}/badge/${encodeURIComponent(domain)}.svg`;
    const map = `${origin}/?focus=${encodeURIComponent(domain)}`;
    html.textContent = `<a href="${escapeHTML(map)}"><img src="${escapeHTML(badge)}" alt="${escapeHTML(domain)} on the XMPP federation map"></a>`;
    markdown.textContent = `[![${domain} on the XMPP federation map](${badge})](${map})`;
  };
  show(PLACEHOLDER);
  const element = h(
    "section.panel",
    null,
    h("h3", { text: "Show a badge" }),
    h("p", { text: "A small SVG image with your domain's place in the federation, for your website (it links to the map):" }),
    h("h4", { text: "HTML" }),
    h("div.snippet", null, h("pre", null, html), copyButton(html)),
    h("h4", { text: "Markdown" }),
    h("div.snippet", null, h("pre", null, markdown), copyButton(markdown)),
    copied,
  );
  return { element, show };
}
