// The Subscribers page: tidy filter URLs, the filter menus and the bulk selection. Loaded with the CSP nonce,
// after Django's JavaScript catalog (ngettext, interpolate); without JavaScript the page is plain links and forms.
"use strict";

(() => {
  // htmx runs the script again when it restores the page from its history: listen once.
  if (window.hexasubsSubscribersPage) return;
  window.hexasubsSubscribersPage = true;
  // Filter URLs carry only what is set, so they stay short enough to share.
  document.addEventListener("formdata", (event) => {
    if (!event.target.matches("[data-drop-empty]")) return;
    const data = event.formData;
    for (const key of new Set(data.keys())) {
      const values = data.getAll(key).filter((value) => value !== "");
      data.delete(key);
      const isDefault = (key === "label_mode" || key === "group_mode") && values.length === 1 && values[0] === "any";
      if (!isDefault) values.forEach((value) => data.append(key, value));
    }
  });

  // One filter menu open at a time; a click elsewhere or Escape closes it.
  document.addEventListener("click", (event) => {
    document.querySelectorAll("details.filter-menu[open]").forEach((menu) => {
      if (!menu.contains(event.target)) menu.open = false;
    });
    const form = event.target.closest("[data-bulk-form]");
    if (form && event.target.closest("[data-select-all-matching]")) {
      form.querySelector("[data-all-matching]").value = "1";
      refreshSelection(form);
      form.querySelector("[data-clear-selection]").focus();
    } else if (form && event.target.closest("[data-clear-selection]")) {
      form.querySelectorAll("[data-select-row]").forEach((box) => { box.checked = false; });
      refreshSelection(form);
      form.querySelector("[data-select-page]").focus();
    }
  });

  document.addEventListener("keydown", (event) => {
    if (event.key !== "Escape") return;
    document.querySelectorAll("details.filter-menu[open]").forEach((menu) => {
      menu.open = false;
      menu.querySelector("summary").focus();
    });
  });

  // Bulk label actions: tick rows, "select all on this page", then "select all N matching this filter".
  // Without JavaScript the bar is always there with an "all matching" checkbox; with it, the bar appears with a
  // selection, as in Gmail and the Django admin.
  document.documentElement.classList.add("js-bulk");

  function refreshSelection(form) {
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
    rows.forEach((box) => box.closest("tr").classList.toggle("table-active", box.checked));
    banner.hidden = !(wholePage && banner.hasAttribute("data-offer-all"));
    banner.querySelector("[data-banner-page]").hidden = everything;
    banner.querySelector("[data-banner-all]").hidden = !everything;
    if (everything) {
      text.textContent = text.dataset.textAll;
    } else {
      const count = ticked.toLocaleString(document.documentElement.lang);
      text.textContent = interpolate(ngettext("%s subscriber selected", "%s subscribers selected", ticked), [count]);
    }
  }

  document.addEventListener("htmx:load", (event) => {
    const root = event.detail.elt;
    const forms = root.matches("[data-bulk-form]") ? [root] : root.querySelectorAll("[data-bulk-form]");
    forms.forEach(refreshSelection);
    const form = root.closest("[data-bulk-form]");
    if (form && form !== root) refreshSelection(form); // a row reloaded in place
  });

  document.addEventListener("change", (event) => {
    const form = event.target.closest("[data-bulk-form]");
    if (!form) return;
    if (event.target.matches("[data-select-page]")) {
      form.querySelectorAll("[data-select-row]").forEach((box) => { box.checked = event.target.checked; });
    }
    refreshSelection(form);
  });
})();
