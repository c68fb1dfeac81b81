// The Import page: a file over the upload limit is refused before it is sent; the button says the upload runs.
// Loaded with the CSP nonce; without JavaScript the server refuses the file and says why.
"use strict";

document.addEventListener("change", (event) => {
  const input = event.target;
  const form = input.closest?.("form[data-max-bytes]");
  if (!form || input.type !== "file") return;
  const message = form.querySelector("[data-too-large]");
  const tooLarge = [...input.files].some((file) => file.size > Number(form.dataset.maxBytes));
  input.classList.toggle("is-invalid", tooLarge);
  message.hidden = !tooLarge;
  input.setCustomValidity(tooLarge ? message.textContent : "");
});

document.addEventListener("submit", (event) => {
  const form = event.target.closest?.("form[data-max-bytes]");
  if (!form) return;
  const button = form.querySelector("[data-uploading-text]");
  button.disabled = true;
  button.textContent = button.dataset.uploadingText;
});
