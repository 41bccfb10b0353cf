"""Does each score respond to what it claims, and not to what it should ignore? Controlled edits
of real footage in three families, and the table of every metric on every edit."""

from .edits import EDITS, FAMILIES, Edit, apply_edit
from .table import SHIPPED_CLIPS, load_clip, validity_table

__all__ = ["EDITS", "FAMILIES", "SHIPPED_CLIPS", "Edit", "apply_edit", "load_clip", "validity_table"]
