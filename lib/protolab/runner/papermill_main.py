"""``python -m protolab.runner.papermill_main ARGS``: papermill's command line, as the runner starts it, without
papermill's warnings about parameters it could not read.

papermill reads a notebook's parameters with a regular expression that misses ``Literal[...]`` and ``X | None``
annotations and range markers, so it logged ``Unable to parse line N '...'`` for valid parameter lines and
``Passed unknown parameter: NAME`` for valid parameters, beside real typos. By the time the runner starts papermill
it has checked every parameter against the notebook's own parameters cell (:func:`protolab.runner.execute.plan`),
and :func:`protolab.figures.start` checks them in the kernel too: those warnings can only be wrong here, so they
are dropped (:data:`DROPPED`); everything else papermill logs is kept.
"""

from __future__ import annotations

import logging

from papermill.cli import papermill

DROPPED = {"papermill": "Passed unknown parameter", "papermill.translators": "Unable to parse line"}
"""Logger → the start of the messages dropped from it (a filter on a logger sees only the records it creates)."""


class DropParameterWarnings(logging.Filter):
    """Drops the records whose message starts with ``prefix``."""

    def __init__(self, prefix: str) -> None:
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.prefix)


if __name__ == "__main__":
    for logger, prefix in DROPPED.items():
        logging.getLogger(logger).addFilter(DropParameterWarnings(prefix))
    papermill(prog_name="papermill")
