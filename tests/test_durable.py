"""Files docs/design.md calls durable are flushed to the disk, and so is the rename that makes them
appear: the file and its folder are both fsynced, and nothing is left under a temporary name."""

import os

from edged import durable


def test_the_file_and_its_folder_are_flushed(tmp_path, monkeypatch):
    synced: list[str] = []
    real_fsync = os.fsync

    def record(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", record)
    target = tmp_path / "outbox.jsonl"
    durable.write_text(target, "one\n")
    assert target.read_text() == "one\n" and sorted(p.name for p in tmp_path.iterdir()) == ["outbox.jsonl"]
    assert synced == [str(tmp_path / "outbox.jsonl.part"), str(tmp_path)]
    synced.clear()
    part = tmp_path / "clip.mp4.part"
    part.write_bytes(b"\x00" * 100)
    durable.commit(part, tmp_path / "clip.mp4")
    assert synced == [str(part), str(tmp_path)] and not part.exists() and (tmp_path / "clip.mp4").stat().st_size == 100
