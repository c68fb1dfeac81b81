from django import forms
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _


class ColorSwatches(forms.RadioSelect):
    """The label colours as chips to pick from, in the app's dialog and the admin alike (static/css/chips.css).

    Each choice is a radio input followed by its chip, so the arrow keys move between colours.
    """

    def render(self, name, value, attrs=None, renderer=None):
        value = "" if value is None else str(value)
        options = [
            (choice or "none", choice, choice or "gray", text if choice else _("No colour"))
            for choice, text in self.choices
        ]
        return format_html(
            '<div class="color-choices" id="{}">{}</div>',
            (attrs or {}).get("id", f"id_{name}"),
            format_html_join(
                "",
                '<input type="radio" class="color-radio" name="{}" id="color-{}" value="{}"{}>'
                '<label class="label-chip label-chip--{} color-choice" for="color-{}">{}</label>',
                (
                    (name, key, choice, " checked" if choice == value else "", chip, key, text)
                    for key, choice, chip, text in options
                ),
            ),
        )

    def id_for_label(self, id_, index=None):
        # A group of radios has no single control to label: its fieldset's legend names it.
        return ""
