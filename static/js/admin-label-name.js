// The admin's Add label form: the name follows the title as on the Labels page (labels.views.label_name),
// until the operator types a name of their own. Loaded by labels.admin.LabelAdmin.Media; no inline scripts.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const title = document.getElementById("id_title");
  const name = document.getElementById("id_name");
  if (!title?.dataset.nameUrl || !name) return;
  let generated = "";
  let timer = null;
  title.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      if (name.value.trim() !== "" && name.value !== generated) return;
      const query = new URLSearchParams({ title: title.value, name: name.value, auto_name: generated, format: "json" });
      const response = await fetch(`${title.dataset.nameUrl}?${query}`, { credentials: "same-origin" });
      if (!response.ok) return;
      const suggestion = await response.json();
      if (name.value.trim() === "" || name.value === generated) name.value = generated = suggestion.name;
    }, 250);
  });
});
