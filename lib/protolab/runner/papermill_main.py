"""``python -m protolab.runner.papermill_main ARGS``: papermill's command line, as the runner starts it, without
papermill's warning about parameters it did not find.

papermill finds a notebook's parameters with a regular expression that misses ``Literal[...]`` and ``X | None``
annotations, so it logged ``Passed unknown parameter: NAME`` for valid parameters, beside real typos. By the time
the runner starts papermill it has refused every parameter a notebook does not declare
(:func:`protolab.runner.execute.plan`), and :func:`protolab.figures.start` refuses them in the kernel too: the
warning can only be wrong here, so it is dropped; everything else papermill logs is kept.
"""

from __future__ import annotations

import logging

from papermill.cli import papermill

UNKNOWN_PARAMETER = "Passed unknown parameter"


class DropUnknownParameterWarnings(logging.Filter):
    """Drops papermill's ``Passed unknown parameter`` records."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(UNKNOWN_PARAMETER)


if __name__ == "__main__":
    logging.getLogger("papermill").addFilter(DropUnknownParameterWarnings())
    papermill(prog_name="papermill")
