"""What the apps' tables render alike."""

import django_tables2 as tables
from django.core.exceptions import FieldDoesNotExist
from django.utils.formats import date_format
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import mark_safe
from django.utils.timezone import localtime
from django_tables2.utils import Accessor, AttributeDict, computed_values, signature


def short_date(value):
    """The day, with the full date and time on hover, in the operator's time zone."""
    local = localtime(value)
    return format_html(
        '<time datetime="{}" title="{}">{}</time>',
        local.isoformat(),
        date_format(local, "DATETIME_FORMAT"),
        date_format(local, "SHORT_DATE_FORMAT"),
    )


class LeanRowsTable(tables.Table):
    """A django-tables2 table whose body rows are written in one pass, for pages with many cells.

    django-tables2 renders each cell through `BoundRow`: it inspects the signature of the column's
    `render_<name>` method, recomputes the column's attributes and walks the accessor again, cell by
    cell, and the template loops over the cells. For the Subscribers page (25 rows of 9 columns) that
    was about a third of the page's time. Here each column's renderer, the arguments it takes and its
    `<td>` attributes are worked out once per table; each cell still comes from the same
    `render_<name>` method, link and default as django-tables2 would use. The columns' `td` attributes
    must not depend on the record (none of ours do), nor their `localize`; the rows' attributes may.
    """

    # What an empty cell shows when its column has no default of its own.
    empty_cell = mark_safe('<span class="text-body-tertiary">—</span>')

    def rows_html(self, records=None):
        """Each row of the page (or of `records`) as one `<tr>…</tr>` string, in order."""
        if records is None:
            records = (row.record for row in self.paginated_rows)
        cells = [self._cell_writer(column) for column in self.columns]
        for number, record in enumerate(records):
            attrs = computed_values(self.row_attrs, kwargs={"table": self, "record": record})
            parity = "odd" if number % 2 else "even"
            attrs["class"] = f"{attrs['class']} {parity}" if attrs.get("class") else parity
            yield format_html(
                "<tr {}>{}</tr>", AttributeDict(attrs).as_html(), mark_safe("".join(cell(record) for cell in cells))
            )

    def _cell_writer(self, bound_column):
        column = bound_column.column
        accessor = Accessor(bound_column.accessor)
        render = bound_column.render
        wanted, catch_all = signature(render)
        unknown = set(wanted) - {"value", "record", "column", "bound_column", "table"}
        if unknown:  # bound_row: there is no BoundRow here
            raise TypeError(f"{type(self).__name__}.render_{bound_column.name} takes {', '.join(sorted(unknown))}")
        link = bound_column.link
        default = bound_column.default
        empty = self.empty_cell if default is None else conditional_escape(default)
        opening = format_html("<td {}>", bound_column.attrs["td"].as_html())
        display = self._display_method(accessor)
        # A column that shows every row and renders from the record alone needs no value.
        needs_value = catch_all or "value" in wanted or column.empty_values or link

        def cell(record):
            value = None
            if display:
                value = getattr(record, display)()
            elif needs_value:
                value = accessor.resolve(record, quiet=True)
            if value in column.empty_values:
                return f"{opening}{empty}</td>"
            arguments = {"value": value, "record": record, "column": column, "bound_column": bound_column}
            arguments["table"] = self
            content = render(**(arguments if catch_all else {name: arguments[name] for name in wanted}))
            if link:
                content = link(content, **arguments)
            return f"{opening}{conditional_escape(content)}</td>"

        return cell

    def _display_method(self, accessor):
        """`get_<field>_display` for a model field with choices, as django-tables2 shows them."""
        model = getattr(self._meta, "model", None)
        if model is None or len(accessor.bits) != 1:
            return None
        try:
            field = model._meta.get_field(accessor.bits[0])
        except FieldDoesNotExist:
            return None
        return f"get_{field.name}_display" if getattr(field, "choices", None) else None
