"""The label filter's checkboxes are written in Python, exactly as Django's templates write them."""

import pytest
from django import forms

from subscribers.filters import QuickCheckboxes

CHOICES = [("vip", "VIP"), ("a&b", "A & B"), ('say "hi"', "Quotes <b>")]


def _boxes(widget_class, value):
    class Form(forms.Form):
        label = forms.MultipleChoiceField(
            choices=CHOICES, required=False, widget=widget_class(attrs={"class": "form-check-input"})
        )

    return Form({"label": value})["label"]


@pytest.mark.parametrize("value", [[], ["vip"], ["a&b", 'say "hi"']])
def test_each_box_is_the_same_as_the_template_writes(value):
    quick, standard = _boxes(QuickCheckboxes, value), _boxes(forms.CheckboxSelectMultiple, value)
    assert [choice.tag() for choice in quick] == [choice.tag() for choice in standard]
    assert len(list(quick)) == 3


def test_labelled_boxes_and_the_whole_widget_still_come_from_the_templates():
    quick, standard = _boxes(QuickCheckboxes, ["vip"]), _boxes(forms.CheckboxSelectMultiple, ["vip"])
    assert [choice.tag(wrap_label=True) for choice in quick] == [choice.tag(wrap_label=True) for choice in standard]
    assert str(quick) == str(standard)
    assert "checked" in str(quick)
