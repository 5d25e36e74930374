// @ts-check
import { h, replace } from "./dom.js";

/**
 * Asks the person to confirm an action in a modal dialog; resolves `true` on confirmation.
 * @param {{ title: string, text: string, confirm: string }} question
 * @returns {Promise<boolean>}
 */
export function confirmAction(question) {
  const dialog = /** @type {HTMLDialogElement} */ (document.getElementById("confirm"));
  const yes = h(
    "button",
    { type: "button", class: "danger", "data-answer": "yes" },
    question.confirm,
  );
  const no = h("button", { type: "button", "data-answer": "no" }, "Keep it");
  replace(
    dialog,
    h("h3", {}, question.title),
    h("p", {}, question.text),
    h("div", { class: "dialog-buttons" }, no, yes),
  );
  return new Promise((resolve) => {
    /** @param {boolean} answer */
    const answer = (answer) => {
      dialog.close();
      resolve(answer);
    };
    yes.addEventListener("click", () => answer(true));
    no.addEventListener("click", () => answer(false));
    dialog.addEventListener("cancel", () => resolve(false), { once: true });
    dialog.showModal();
    no.focus();
  });
}
