// Building the page's elements. Data is only ever text: strings become
// text nodes, never markup.

/**
 * @param {string} tag
 * @param {Record<string, any>} [attributes] attributes by name; a function
 *   under "onX" listens to event X; false, null and undefined are left out
 * @param {...(Node | string | number | null | undefined | false)} children
 *   strings and numbers become text
 * @returns {HTMLElement}
 */
export function el(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === false || value === null || value === undefined) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2).toLowerCase(), value);
    } else {
      element.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(element, ...children);
  return element;
}

/**
 * @param {Element} parent
 * @param {...(Node | string | number | null | undefined | false)} children
 */
export function append(parent, ...children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.append(typeof child === "number" ? String(child) : child);
  }
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
  return el("time", { datetime: iso, title: iso }, text);
}
