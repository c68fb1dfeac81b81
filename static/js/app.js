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
