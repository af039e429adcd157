"""Publishing a notebook's outputs into ``out_dir``: all of them at once, one run at a time.

The runner has each notebook write into its own staging folder (``$PROTOLAB_STAGE_DIR``). Only when the
notebook succeeds are its files moved into ``out_dir``, replacing every output of its previous run; a
notebook that fails or is stopped publishes nothing, so its old outputs stay (the report marks them stale).
:func:`out_dir_lock` serialises the runs writing into one ``out_dir``: publishing, ``runs.json`` and the
report change together under it.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from protolab.core.atomic import atomic_write


@contextmanager
def out_dir_lock(out_dir: Path, announce: Callable[[str], None] = print) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the directory ``out_dir`` itself (no lock file is left in it).

    When another run holds it, ``announce`` says so once and the call waits for it.
    """
    descriptor = os.open(out_dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            announce(f"protolab: another run is writing {out_dir}; waiting for it")
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)


def publish(stage: Path, out_dir: Path, notebook: str) -> list[Path]:
    """Move every file of ``stage`` into ``out_dir``, remove the outputs of ``notebook`` it does not hold,
    and remove ``stage`` (a notebook that did not succeed keeps its staged outputs in the run for inspection).

    Call it under :func:`out_dir_lock`. Each file is replaced atomically (copied, so ``stage`` may be on
    another file system); provenance sidecars are written last so that a sidecar never names a file that
    is not there yet.
    """
    files = sorted((path for path in Path(stage).iterdir() if path.is_file()), key=lambda path: path.suffix == ".json")
    names = {path.name for path in files}
    published = []
    for path in files:
        target = Path(out_dir) / path.name
        atomic_write(target, lambda handle, source=path: handle.write(source.read_bytes()))
        published.append(target)
    for old in Path(out_dir).glob(f"{notebook}__*"):
        if old.name not in names:
            old.unlink()
    for path in files:
        path.unlink()
    Path(stage).rmdir()
    return published
