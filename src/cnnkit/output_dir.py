"""Where a verb's files go when it is not attached to a run: `--out` (a file, or a folder), or
else a new folder in the runs folder, named like a run (never overwriting one)."""

from __future__ import annotations

from pathlib import Path

from cnnkit.rundir import create_run_dir


def output_file(
    out: str | None, filename: str, *, runs_dir: str | Path, name: str | None, what: str, dataset: str, model: str
) -> Path:
    """The path to write `filename` to.

    out ending in `filename`'s suffix: that file. Another `out`: a folder, created, holding `filename`.
    None: `<runs_dir>/<what>-<dataset>-<model>-<time>/filename` (or `<runs_dir>/<name>/`), a new folder.
    """
    if out is not None:
        path = Path(out)
        if path.suffix.lower() == Path(filename).suffix.lower():
            path.parent.mkdir(parents=True, exist_ok=True)
            return path
        path.mkdir(parents=True, exist_ok=True)
        return path / filename
    folder = create_run_dir(runs_dir, name, dataset=f"{what}-{dataset}", model=model)
    (folder / "plots").rmdir()  # a run folder's plots/ is for training runs
    return folder / filename
