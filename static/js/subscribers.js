// Subscriber pages: the "Manage labels" dialog, filter boxes over label lists, tidy filter URLs.
// Loaded with the CSP nonce; every feature here also works as plain links and forms without it.
"use strict";

(() => {
  if (window.hexasubsSubscribers) return;
  window.hexasubsSubscribers = true;

  let returnFocusTo = null; // id of the button that opened the dialog: the row may be replaced meanwhile

  function restoreFocus() {
    let button = returnFocusTo && document.getElementById(returnFocusTo);
    // A bulk action's button hides once the refreshed table has no selection: the table takes the focus.
    if (button && !button.offsetParent) button = document.querySelector("[data-select-page]");
    // Kept after use: the table may be refreshed after the dialog closed, and the focus must come back again.
    if (button) button.focus();
  }

  document.addEventListener("htmx:beforeRequest", (event) => {
    if (!event.detail.target || event.detail.target.id !== "modal-root") return;
    // A form's dialog returns the focus to the button that submitted it.
    const opener = event.detail.requestConfig?.triggeringEvent?.submitter || event.detail.elt;
    if (opener.id) returnFocusTo = opener.id;
  });

  // The dialog explains refusals (403), vanished subscribers (404) and invalid choices (422) itself.
  document.addEventListener("htmx:beforeSwap", (event) => {
    const inDialog = event.detail.target && event.detail.target.closest("#modal-root");
    if (inDialog && [403, 404, 422].includes(event.detail.xhr.status)) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  document.addEventListener("htmx:afterSwap", (event) => {
    if (event.detail.target.id !== "modal-root") return;
    const dialog = event.detail.target.querySelector("[data-hexasubs-modal]");
    if (!dialog) return;
    dialog.addEventListener("shown.bs.modal", () => {
      const first = dialog.querySelector("[data-filter-list]:not([hidden]), .form-check-input, .btn");
      if (first) first.focus();
    });
    dialog.addEventListener("hidden.bs.modal", () => {
      bootstrap.Modal.getInstance(dialog)?.dispose();
      dialog.remove();
      restoreFocus();
    });
    bootstrap.Modal.getOrCreateInstance(dialog).show();
  });

  document.addEventListener("htmx:afterSettle", () => {
    if (!document.querySelector("#modal-root [data-hexasubs-modal]") && document.activeElement === document.body) {
      restoreFocus();
    }
  });

  // Each later step of a dialog (a bulk change's confirmation, progress or a warning) puts the keyboard on its main control.
  // (htmx:load, because the form that asked for the step is gone from the page by the time it settles.)
  document.addEventListener("htmx:load", (event) => {
    const content = event.detail.elt.closest && event.detail.elt.closest("#modal-root .modal.show .modal-content");
    if (!content) return;
    const first = ["[data-autofocus]", "[data-filter-list]:not([hidden])", ".form-check-input", ".modal-footer .btn"]
      .map((selector) => content.querySelector(selector))
      .find(Boolean);
    if (first) first.focus();
  });

  document.addEventListener("labelsSaved", () => {
    const dialog = document.querySelector("#modal-root [data-hexasubs-modal]");
    if (dialog) bootstrap.Modal.getOrCreateInstance(dialog).hide();
  });

  // A search box over a list of checkboxes: `data-filter-list="#list"`, items carry `data-filter-text`.
  function setUpFilterBoxes(root) {
    root.querySelectorAll("[data-filter-list]").forEach((box) => {
      box.hidden = false;
      box.addEventListener("input", () => {
        const list = document.querySelector(box.dataset.filterList);
        const words = box.value.toLowerCase().trim().split(/\s+/).filter(Boolean);
        let shown = 0;
        list.querySelectorAll("[data-filter-text]").forEach((item) => {
          const match = words.every((word) => item.dataset.filterText.includes(word));
          item.hidden = !match;
          if (match) shown += 1;
        });
        const empty = list.querySelector("[data-filter-empty]");
        if (empty) empty.hidden = shown > 0;
      });
      // Enter in the box must not submit the form around it.
      box.addEventListener("keydown", (event) => {
        if (event.key === "Enter") event.preventDefault();
      });
    });
  }
  document.addEventListener("DOMContentLoaded", () => setUpFilterBoxes(document));
  document.addEventListener("htmx:load", (event) => setUpFilterBoxes(event.detail.elt));

  // Filter URLs carry only what is set, so they stay short enough to share.
  document.addEventListener("formdata", (event) => {
    if (!event.target.matches("[data-drop-empty]")) return;
    const data = event.formData;
    for (const key of new Set(data.keys())) {
      const values = data.getAll(key).filter((value) => value !== "");
      data.delete(key);
      const isDefault = key === "label_mode" && values.length === 1 && values[0] === "any";
      if (!isDefault) values.forEach((value) => data.append(key, value));
    }
  });

  // One filter menu open at a time; a click elsewhere closes it.
  document.addEventListener("click", (event) => {
    document.querySelectorAll("details.filter-menu[open]").forEach((menu) => {
      if (!menu.contains(event.target)) menu.open = false;
    });
  });
  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details.filter-menu[open]").forEach((menu) => {
      menu.open = false;
      menu.querySelector("summary").focus();
    });
  });
})();

// Bulk label actions: tick rows, "select all on this page", then "select all N matching this filter".
// Without JavaScript the bar is always shown with an "all matching" checkbox; this script makes it appear
// only with a selection, as Gmail and the Django admin do.
(() => {
  if (window.hexasubsBulkSelection) return;
  window.hexasubsBulkSelection = true;
  // With this class the bar waits for a selection and the page box shows, also in freshly swapped tables.
  document.documentElement.classList.add("js-bulk");

  function refresh(form) {
    const rows = [...form.querySelectorAll("[data-select-row]")];
    const ticked = rows.filter((box) => box.checked).length;
    const pageBox = form.querySelector("[data-select-page]");
    const allMatching = form.querySelector("[data-all-matching]");
    const banner = form.querySelector("[data-bulk-banner]");
    const text = form.querySelector("[data-selection-text]");
    const wholePage = rows.length > 0 && ticked === rows.length;
    if (!wholePage) allMatching.value = "";
    const everything = allMatching.value === "1";

    pageBox.checked = wholePage;
    pageBox.indeterminate = ticked > 0 && !wholePage;
    form.querySelector("[data-bulk-bar]").classList.toggle("is-active", ticked > 0);
    form.classList.toggle("has-selection", ticked > 0);
    rows.forEach((box) => box.closest("tr").classList.toggle("table-active", box.checked));
    banner.hidden = !(wholePage && banner.hasAttribute("data-offer-all"));
    banner.querySelector("[data-banner-page]").hidden = everything;
    banner.querySelector("[data-banner-all]").hidden = !everything;
    if (everything) text.textContent = text.dataset.textAll;
    else if (ticked === 1) text.textContent = text.dataset.textOne;
    else text.textContent = text.dataset.textMany.replace("__count__", ticked.toLocaleString());
  }

  function setUp(root) {
    const forms = root.matches && root.matches("[data-bulk-form]") ? [root] : [...root.querySelectorAll("[data-bulk-form]")];
    forms.forEach(refresh);
  }
  document.addEventListener("DOMContentLoaded", () => setUp(document));
  // After a bulk change the table is refreshed and the selection gone: the keyboard goes back to the table.
  let refocusTable = false;
  document.addEventListener("subscribers-changed", () => { refocusTable = true; });

  document.addEventListener("htmx:load", (event) => {
    const form = event.detail.elt.closest && event.detail.elt.closest("[data-bulk-form]");
    if (form) refresh(form);
    else setUp(event.detail.elt);
    const lost = document.activeElement === document.body || !document.activeElement?.offsetParent;
    if (refocusTable && event.detail.elt.id === "subscriber-results" && lost) {
      refocusTable = false;
      (event.detail.elt.querySelector("[data-select-page]") || document.querySelector("main h1"))?.focus();
    }
  });

  document.addEventListener("change", (event) => {
    const form = event.target.closest("[data-bulk-form]");
    if (!form) return;
    if (event.target.matches("[data-select-page]")) {
      form.querySelectorAll("[data-select-row]").forEach((box) => { box.checked = event.target.checked; });
    }
    refresh(form);
  });

  document.addEventListener("click", (event) => {
    const form = event.target.closest("[data-bulk-form]");
    if (!form) return;
    if (event.target.closest("[data-select-all-matching]")) {
      form.querySelector("[data-all-matching]").value = "1";
      refresh(form);
      form.querySelector("[data-clear-selection]").focus();
    } else if (event.target.closest("[data-clear-selection]")) {
      form.querySelectorAll("[data-select-row]").forEach((box) => { box.checked = false; });
      refresh(form);
      form.querySelector("[data-select-page]").focus();
    }
  });
})();
