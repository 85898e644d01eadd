// The page's navigation between its views (every view shows it).
import "./views.css";
import { h } from "./dom.js";

/** path -> the link's text */
export const NAV = {
  "/": "Map",
  "/stats": "Statistics",
  "/add": "Add your server",
};

/** Put the navigation into the page's header, marking the current view. */
export function showNav() {
  const list = h("ul");
  for (const [path, text] of Object.entries(NAV)) {
    const current = location.pathname === path;
    list.append(h("li", null, h("a", { href: path, "aria-current": current && "page", text })));
  }
  const nav = h("nav.nav", { "aria-label": "Views" }, list);
  document.querySelector("header.bar h1").after(nav);
}
