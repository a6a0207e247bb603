"""Stage 5 — the result: :class:`Report` (per tensor, per entry, JSON), its text rendering
and its plots."""

from gradcheck.report.results import SCHEMA_VERSION, EntryResult, Report, TensorReport

__all__ = ["SCHEMA_VERSION", "EntryResult", "Report", "TensorReport"]
