// @ts-check
import { getSession } from "./api.js";
import { listView } from "./list-view.js";
import { requestView } from "./request-view.js";

/* The page's views by the address's hash: `#/` the list of requests, `#/requests/<id>` one. */

/** @type {{ destroy(): void } | undefined} */
let view;

function route() {
  const main = /** @type {HTMLElement} */ (document.getElementById("main"));
  view?.destroy();
  const match = /^#\/requests\/([1-9][0-9]*)$/.exec(location.hash);
  view = match ? requestView(main, Number(match[1])) : listView(main);
  window.scrollTo(0, 0);
}

async function start() {
  window.addEventListener("hashchange", route);
  route();
  const session = await getSession();
  const title = document.getElementById("title");
  if (title && session.title) title.textContent = session.title;
}

void start();
