// Hexasubs behaviour shared by every page. Loaded with the CSP nonce; no inline scripts.
// Everything here also works as plain links, forms and pages when JavaScript is off.
"use strict";

// Toasts: whole pages render Django's messages; htmx answers send theirs in HX-Trigger (hexasubs.middleware),
// shown from the server-rendered <template id="toast-template">.
function showToast(toast) {
  toast.addEventListener("hidden.bs.toast", () => toast.remove());
  bootstrap.Toast.getOrCreateInstance(toast).show();
}

function addToast(text, level) {
  const toast = document.getElementById("toast-template").content.firstElementChild.cloneNode(true);
  toast.classList.replace("text-bg-success", `text-bg-${level}`);
  toast.setAttribute("role", level === "danger" ? "alert" : "status");
  toast.querySelector(".toast-body").textContent = text;
  document.getElementById("toasts").append(toast);
  showToast(toast);
}

document.addEventListener("showMessages", (event) => event.detail.messages.forEach((m) => addToast(m.text, m.level)));
document.addEventListener("htmx:responseError", () => addToast(document.getElementById("toasts").dataset.failureText, "danger"));
document.addEventListener("htmx:sendError", () => addToast(document.getElementById("toasts").dataset.failureText, "danger"));

// Dialogs (templates/dialog.html, hexasubs/dialogs.py): a view renders a `.modal` into #modal-root; it opens at
// once and is removed once closed. `closeModal` in HX-Trigger closes it. The keyboard goes to the dialog's main
// control, and back to what opened it: a table may have been re-rendered meanwhile, so it is found again by id.
let opener = null;
let dialogJustClosed = false; // until the next key or click: what the dialog changed may still be re-rendering

const isVisible = (element) => Boolean(element && element.isConnected && element.offsetParent);

function focusMainControl(content) {
  const selectors = [
    "form .is-invalid",
    "[data-autofocus]",
    "[data-filter-list]:not([hidden])",
    ".modal-body :is(input:not([type=hidden]):not([readonly]), textarea, select)",
    ".modal-footer .btn",
  ];
  selectors.map((selector) => content.querySelector(selector)).find(Boolean)?.focus();
}

function returnFocus() {
  const candidates = [opener && document.getElementById(opener), document.querySelector("[data-return-focus]"), document.querySelector("main h1")];
  candidates.find(isVisible)?.focus();
}

document.addEventListener("htmx:beforeRequest", (event) => {
  if (event.detail.target?.id !== "modal-root") return;
  const source = event.detail.requestConfig?.triggeringEvent?.submitter || event.detail.elt;
  opener = source.id || null;
});

document.addEventListener("htmx:afterSwap", (event) => {
  const target = event.detail.target; // none when htmx restores a page from its history (Back, Forward)
  const modal = target?.id === "modal-root" && target.querySelector(".modal");
  if (!modal) return;
  modal.addEventListener("shown.bs.modal", () => focusMainControl(modal), { once: true });
  modal.addEventListener("hidden.bs.modal", () => {
    bootstrap.Modal.getInstance(modal)?.dispose();
    modal.remove();
    dialogJustClosed = true;
    returnFocus();
  }, { once: true });
  bootstrap.Modal.getOrCreateInstance(modal).show();
});

// Outside dialogs: a swap that replaced the element with the keyboard (a Cancel button gone once pressed) hands
// it to the first control of what came instead, or to that part itself, rather than dropping it on the page.
let keyboardInSwap = null; // the id of the swap target that held the focus

document.addEventListener("htmx:beforeSwap", (event) => {
  const target = event.detail.target;
  const focused = document.activeElement;
  keyboardInSwap = target?.id && focused !== document.body && target.contains(focused) ? target.id : null;
});

function keepKeyboardIn(id) {
  const part = document.getElementById(id);
  if (!part) return;
  const control = part.querySelector("button:not([disabled]), a[href], input:not([type=hidden]), select, textarea");
  if (control) {
    control.focus();
  } else {
    part.tabIndex = -1;
    part.focus();
  }
}

document.addEventListener("htmx:afterSettle", (event) => {
  const dialog = event.target.closest?.("#dialog-content");
  if (event.target === dialog) {
    focusMainControl(dialog); // the dialog's next step: errors to fix, a confirmation, a result
  } else if (dialog && !isVisible(document.activeElement)) {
    focusMainControl(dialog); // a part of it was replaced with what had the keyboard (Cancel the change)
  } else if (dialogJustClosed && !document.querySelector("#modal-root .modal") && !isVisible(document.activeElement)) {
    returnFocus(); // what had the keyboard was re-rendered after the dialog closed
  } else if (keyboardInSwap && !isVisible(document.activeElement)) {
    keepKeyboardIn(keyboardInSwap);
  }
  keyboardInSwap = null;
});

document.addEventListener("closeModal", () => {
  document.querySelectorAll("#modal-root .modal").forEach((modal) => bootstrap.Modal.getOrCreateInstance(modal).hide());
});

// Set up what arrives, on the first page and in every swapped fragment.
document.addEventListener("htmx:load", (event) => {
  const root = event.detail.elt;
  root.querySelectorAll("[data-toast].show").forEach(showToast);
  // Dialog openers are links, so that they work without JavaScript; with it they are the buttons they look like.
  root.querySelectorAll('a[aria-haspopup="dialog"]').forEach((link) => link.setAttribute("role", "button"));
  // A search box over a list of checkboxes: `data-filter-list="#list"`; the items carry `data-filter-text`.
  root.querySelectorAll("[data-filter-list]").forEach((box) => { box.hidden = false; });
});

document.addEventListener("pointerdown", () => { dialogJustClosed = false; });
document.addEventListener("keydown", (event) => {
  dialogJustClosed = false;
  if (event.key === " " && event.target.matches?.('a[role="button"]')) {
    event.preventDefault();
    event.target.click();
  } else if (event.key === "Enter" && event.target.matches?.("[data-filter-list]")) {
    event.preventDefault(); // Enter in a filter box must not submit the form around it
  }
});

document.addEventListener("input", (event) => {
  const box = event.target;
  if (!box.matches("[data-filter-list]")) return;
  const list = document.querySelector(box.dataset.filterList);
  const words = box.value.toLowerCase().trim().split(/\s+/).filter(Boolean);
  let shown = 0;
  list.querySelectorAll("[data-filter-text]").forEach((item) => {
    item.hidden = !words.every((word) => item.dataset.filterText.includes(word));
    if (!item.hidden) shown += 1;
  });
  const empty = list.querySelector("[data-filter-empty]");
  if (empty) empty.hidden = shown > 0;
});
