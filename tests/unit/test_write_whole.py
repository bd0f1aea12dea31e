"""Rendered files are written whole or not at all (a full disk once left a truncated HTML where the
previous report was)."""

from __future__ import annotations

import errno
import os

import pytest

from crm_kpis.report import render
from crm_kpis.report.render import write_whole


def test_a_new_file_replaces_the_old_one_whole(tmp_path):
    target = tmp_path / "reports" / "2026-10.html"
    write_whole(target, "<p>September</p>")
    write_whole(target, "<p>October</p>")
    assert target.read_text() == "<p>October</p>"
    assert [p.name for p in target.parent.iterdir()] == ["2026-10.html"]  # no temporary file left


def test_a_full_disk_leaves_the_previous_file_and_no_partial_one(tmp_path, monkeypatch):
    target = tmp_path / "2026-10.html"
    target.write_text("<p>the report as sent</p>")

    def full_disk(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(render.os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_whole(target, "<p>half a rep")
    assert target.read_text() == "<p>the report as sent</p>"
    assert os.listdir(tmp_path) == ["2026-10.html"]


def test_an_object_store_path_is_uploaded_in_one_piece(tmp_path):
    from airflow.sdk import ObjectStoragePath

    target = ObjectStoragePath(f"file://{tmp_path}/r/2026-10.pdf")
    write_whole(target, b"%PDF-1.7 whole")
    assert (tmp_path / "r" / "2026-10.pdf").read_bytes() == b"%PDF-1.7 whole"
    memory = ObjectStoragePath("memory://reports/2026-10.pdf")  # another protocol: one write, no rename
    write_whole(memory, b"%PDF-1.7 whole")
    assert memory.read_bytes() == b"%PDF-1.7 whole"
