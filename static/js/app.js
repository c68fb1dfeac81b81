// Hexasubs behaviour shared by every page. Loaded with the CSP nonce; no inline scripts.
"use strict";

function showToast(text, level = "success") {
  const container = document.getElementById("toasts");
  const toast = document.createElement("div");
  toast.className = `toast align-items-center text-bg-${level} border-0`;
  toast.setAttribute("role", level === "danger" ? "alert" : "status");
  const body = document.createElement("div");
  body.className = "d-flex";
  const message = document.createElement("div");
  message.className = "toast-body";
  message.textContent = text;
  const close = document.createElement("button");
  close.type = "button";
  close.className = "btn-close btn-close-white me-2 m-auto";
  close.dataset.bsDismiss = "toast";
  close.setAttribute("aria-label", "Close");
  body.append(message, close);
  toast.append(body);
  container.append(toast);
  bootstrap.Toast.getOrCreateInstance(toast).show();
  toast.addEventListener("hidden.bs.toast", () => toast.remove());
}

document.addEventListener("DOMContentLoaded", () => {
  // Server-rendered messages are visible without JavaScript; with it, they fade out.
  document.querySelectorAll("[data-hexasubs-toast]").forEach((element) => {
    bootstrap.Toast.getOrCreateInstance(element).show();
  });
});

// A view answers `HX-Trigger: {"showMessage": {"text": "...", "level": "success"}}`.
document.addEventListener("showMessage", (event) => showToast(event.detail.text, event.detail.level));

// Dialogs: a view renders a `.modal` into #modal-root (hx-target="#modal-root"); it opens at once and is
// removed when closed. A view answers `HX-Trigger: {"closeModal": {}}` to close it after a successful save.
// Dialogs marked data-hexasubs-modal are handled by static/js/subscribers.js instead.
let dialogOpener = null; // id of the button that opened the dialog: its row may be re-rendered meanwhile

function focusFirstField(container) {
  const field = container.querySelector(".is-invalid")
    || container.querySelector(".modal-body input:not([type=hidden]), .modal-body textarea, .modal-body select, .modal-footer .btn");
  if (field) field.focus();
}

function returnFocusToOpener() {
  // The opener may be gone (its row deleted): the page's heading then takes the focus.
  const opener = (dialogOpener && document.getElementById(dialogOpener)) || document.querySelector("main h1[tabindex]");
  if (opener) opener.focus();
}

document.addEventListener("htmx:beforeRequest", (event) => {
  if (event.detail.target && event.detail.target.id === "modal-root") dialogOpener = event.detail.elt.id || null;
});

document.addEventListener("htmx:afterSwap", (event) => {
  const target = event.detail.target;
  if (target.id === "modal-root") {
    const modal = target.querySelector(".modal:not([data-hexasubs-modal])");
    if (!modal) return;
    modal.addEventListener("shown.bs.modal", () => focusFirstField(modal), { once: true });
    modal.addEventListener("hidden.bs.modal", () => {
      bootstrap.Modal.getInstance(modal)?.dispose();
      modal.remove();
      returnFocusToOpener();
    }, { once: true });
    bootstrap.Modal.getOrCreateInstance(modal).show();
  }
});

document.addEventListener("htmx:afterSettle", (event) => {
  const modal = event.detail.elt.closest && event.detail.elt.closest(".modal.show:not([data-hexasubs-modal])");
  if (modal) {
    // A form re-rendered with its errors: put the keyboard on the first field to fix.
    const invalid = modal.querySelector("form .is-invalid");
    if (invalid && event.detail.elt.matches("form")) invalid.focus();
  } else if (dialogOpener && document.activeElement === document.body && !document.querySelector("#modal-root .modal")) {
    // The page was refreshed after the dialog closed: find the opener again, or the page's heading.
    returnFocusToOpener();
    dialogOpener = null;
  }
});

document.addEventListener("closeModal", () => {
  document.querySelectorAll("#modal-root .modal.show:not([data-hexasubs-modal])")
    .forEach((modal) => bootstrap.Modal.getInstance(modal)?.hide());
});
