"""fileio: files that belong together are replaced together or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from tunetrace.fileio import write_texts


def test_write_texts_replaces_every_file(tmp_path: Path) -> None:
    """Both renderings of one result are written."""
    write_texts({tmp_path / "r.json": "{}\n", tmp_path / "r.md": "# r\n"})
    assert (tmp_path / "r.json").read_text() == "{}\n" and (tmp_path / "r.md").read_text() == "# r\n"


def test_failed_write_keeps_every_old_file(tmp_path: Path) -> None:
    """When one file cannot be written, the other keeps its old bytes and no temporary file is left."""
    (tmp_path / "r.json").write_text("old\n")
    (tmp_path / "blocker").write_text("a file where a directory should be\n")
    with pytest.raises(OSError):
        write_texts({tmp_path / "r.json": "new\n", tmp_path / "blocker" / "r.md": "new\n"})
    assert (tmp_path / "r.json").read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocker", "r.json"]
