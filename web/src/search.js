// Search with autocomplete: an ARIA combobox (WAI-ARIA APG "list
// autocomplete") over the named domains on the map. Arrows move through
// the suggestions, Enter focuses one, Escape closes the list.
import { h } from "./dom.js";

const MOST = 12;

/**
 * @param {() => string[]} names the domains one can find, when asked
 * @param {(name: string) => void} choose called with the chosen domain
 * @returns {HTMLElement} the search form
 */
export function searchBox(names, choose) {
  const list = h("ul", { id: "search-options", role: "listbox", class: "search-options", "aria-label": "Domains" });
  list.hidden = true;
  const input = h("input", {
    id: "search",
    type: "search",
    role: "combobox",
    autocomplete: "off",
    spellcheck: "false",
    placeholder: "Find a domain",
    "aria-autocomplete": "list",
    "aria-expanded": "false",
    "aria-controls": "search-options",
  });
  /** @type {string[]} */
  let options = [];
  let active = -1;

  function show() {
    list.replaceChildren(
      ...options.map((name, i) =>
        h(
          "li",
          {
            id: `search-option-${i}`,
            role: "option",
            "aria-selected": i === active ? "true" : "false",
            onmousedown: (event) => {
              event.preventDefault();
              pick(name);
            },
          },
          name,
        ),
      ),
    );
    list.hidden = options.length === 0;
    input.setAttribute("aria-expanded", String(!list.hidden));
    if (active >= 0) input.setAttribute("aria-activedescendant", `search-option-${active}`);
    else input.removeAttribute("aria-activedescendant");
  }

  function close() {
    options = [];
    active = -1;
    show();
  }

  function pick(name) {
    input.value = name;
    close();
    choose(name);
  }

  input.addEventListener("input", () => {
    options = suggest(names(), input.value);
    active = -1;
    show();
  });
  input.addEventListener("blur", close);
  input.addEventListener("keydown", (event) => {
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      if (options.length === 0) options = suggest(names(), input.value);
      if (options.length === 0) return;
      const step = event.key === "ArrowDown" ? 1 : -1;
      active = (active + step + options.length) % options.length;
      show();
      event.preventDefault();
    } else if (event.key === "Enter") {
      event.preventDefault();
      const wanted = input.value.trim().toLowerCase();
      const name = active >= 0 ? options[active] : names().find((n) => n === wanted) ?? options[0];
      if (name !== undefined) pick(name);
    } else if (event.key === "Escape" && !list.hidden) {
      event.stopPropagation();
      close();
    }
  });
  return h(
    "form",
    { class: "map-search", role: "search", onsubmit: (event) => event.preventDefault() },
    h("label", { for: "search", class: "visually-hidden" }, "Find a domain"),
    input,
    list,
  );
}

/**
 * @param {string[]} names
 * @param {string} text what was typed
 * @returns {string[]} the names that start with it, then those that
 *   contain it, at most {@link MOST}
 */
export function suggest(names, text) {
  const wanted = text.trim().toLowerCase();
  if (wanted === "") return [];
  const starts = [];
  const contains = [];
  for (const name of names) {
    if (name.startsWith(wanted)) starts.push(name);
    else if (name.includes(wanted)) contains.push(name);
  }
  starts.sort();
  contains.sort();
  return starts.concat(contains).slice(0, MOST);
}
