// Building the views' DOM: every text goes in as a text node, never as
// markup, so that a domain name (or any message) is always shown as text.

const SVG = "http://www.w3.org/2000/svg";

/**
 * @typedef {string | number | Node | null | undefined | false} Child
 */

/**
 * Make an element.
 * @param {string} tag e.g. "p" or "a.button" (a tag and classes)
 * @param {Record<string, string | number | boolean | EventListener> | null} [attributes]
 *   attributes (false or null leave one out); `text` sets the text content;
 *   a function under `onX` listens to event X
 * @param {...(Child | Child[])} children nodes or texts to append
 * @returns {HTMLElement}
 */
export function h(tag, attributes = null, ...children) {
  const [name, ...classes] = tag.split(".");
  const element = document.createElement(name);
  if (classes.length) element.className = classes.join(" ");
  return fill(element, attributes, children);
}

/**
 * Make an SVG element (same arguments as {@link h}).
 * @param {string} tag
 * @param {Record<string, string | number | boolean> | null} [attributes]
 * @param {...(Child | Child[])} children
 * @returns {SVGElement}
 */
export function s(tag, attributes = null, ...children) {
  const [name, ...classes] = tag.split(".");
  const element = document.createElementNS(SVG, name);
  if (classes.length) element.setAttribute("class", classes.join(" "));
  return fill(element, attributes, children);
}

/**
 * @template {Element} E
 * @param {E} element
 * @param {Record<string, string | number | boolean | EventListener> | null} attributes
 * @param {(Child | Child[])[]} children
 * @returns {E}
 */
function fill(element, attributes, children) {
  for (const [key, value] of Object.entries(attributes ?? {})) {
    if (value === false || value === null || value === undefined) continue;
    if (typeof value === "function" && key.startsWith("on")) element.addEventListener(key.slice(2), value);
    else if (key === "text") element.textContent = String(value);
    else element.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(typeof child === "object" ? child : String(child));
  }
  return element;
}

/**
 * Replace the map with a view of its own: a scrolling region in <main>.
 * @param {string} title the document's title
 * @returns {HTMLElement} the view's element, to fill
 */
export function openView(title) {
  document.getElementById("map")?.remove();
  document.title = `${title} · XMPP federation map`;
  const view = h("div.view", { id: "view" });
  document.querySelector("main").prepend(view);
  return view;
}

/** @param {number} n @returns {string} e.g. "1,234" */
export function formatCount(n) {
  return n.toLocaleString("en");
}

/**
 * @param {number} part
 * @param {number} whole
 * @returns {string} e.g. "42 %" ("–" when whole is 0)
 */
export function formatShare(part, whole) {
  if (!whole) return "–";
  const share = (100 * part) / whole;
  return `${share < 10 && share > 0 ? share.toFixed(1) : Math.round(share)} %`;
}

/**
 * @param {string | null | undefined} iso an RFC 3339 time
 * @returns {Node} "3 min ago" in a <time>, or "never"
 */
export function ago(iso) {
  if (!iso) return document.createTextNode("never");
  const seconds = Math.round((Date.now() - Date.parse(iso)) / 1000);
  let text;
  if (seconds < 60) text = "just now";
  else if (seconds < 3600) text = `${Math.round(seconds / 60)} min ago`;
  else if (seconds < 86400 * 2) text = `${Math.round(seconds / 3600)} h ago`;
  else text = `${Math.round(seconds / 86400)} days ago`;
  return h("time", { datetime: iso, title: iso }, text);
}
