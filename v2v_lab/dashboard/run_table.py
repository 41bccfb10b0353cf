"""The runs table as a widget that answers clicks: a row clicked selects its run in Python."""

from __future__ import annotations

import anywidget
import traitlets

__all__ = ["RunTable"]


class RunTable(anywidget.AnyWidget):
    """Shows `value` (a table whose rows carry data-run); clicking a row sets `selected` to its run id.
    `value` is markup this package built with every value in it escaped (markup.esc): the one
    innerHTML in the dashboards, and never a value put in raw."""

    _esm = """
    function render({ model, el }) {
      el.classList.add("v2v-runs-table");
      const draw = () => { el.innerHTML = model.get("value"); };
      el.addEventListener("click", (event) => {
        const row = event.target.closest("tr[data-run]");
        if (!row) return;
        model.set("selected", row.dataset.run);
        model.save_changes();
      });
      model.on("change:value", draw);
      draw();
    }
    export default { render };
    """
    _css = """
    .v2v-runs-table table.v2v-runs { border-collapse: collapse; font-size: 13px; }
    .v2v-runs-table table.v2v-runs th, .v2v-runs-table table.v2v-runs td { padding: 2px 8px; text-align: left; }
    .v2v-runs-table table.v2v-runs tbody tr { cursor: pointer; }
    .v2v-runs-table table.v2v-runs tbody tr:hover { background: #eef4ff; }
    """
    value = traitlets.Unicode("").tag(sync=True)  # the table's HTML
    selected = traitlets.Unicode("").tag(sync=True)
