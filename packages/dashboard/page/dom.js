// @ts-check
/* Building the page from data: elements with text, never HTML parsed from the store's strings. */

/**
 * @typedef {string | number | Node | null | undefined | false} Child
 * @typedef {{ class?: string, title?: string, onclick?: (event: MouseEvent) => void, [attribute: string]: unknown }} Props
 */

/**
 * A new element with attributes (`class`, `data-*`, `aria-*`, ...), an optional click handler
 * and children (strings become text nodes).
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Props} [props]
 * @param {...Child} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "onclick") element.addEventListener("click", /** @type {EventListener} */ (value));
    else if (name === "class") element.className = String(value);
    else element.setAttribute(name, value === true ? "" : String(value));
  }
  append(element, ...children);
  return element;
}

/**
 * Appends children, skipping empty ones.
 * @param {Element} element
 * @param {...Child} children
 */
export function append(element, ...children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    element.append(typeof child === "number" ? String(child) : child);
  }
}

/**
 * Replaces an element's children.
 * @param {Element} element
 * @param {...Child} children
 */
export function replace(element, ...children) {
  element.replaceChildren();
  append(element, ...children);
}

/**
 * A card: a titled section of the page.
 * @param {string} title
 * @param {...Child} children
 */
export function card(title, ...children) {
  return h("section", { class: "card" }, h("h2", {}, title), ...children);
}

/**
 * The words shown where the store keeps nothing of a kind (yet).
 * @param {string} what
 */
export function notRecorded(what) {
  return h("p", { class: "muted not-recorded" }, `${what}: not recorded by this store.`);
}
