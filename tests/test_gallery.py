"""Gallery behaviour: several embeddings per person, model tags, export/import, crash safety."""

import json
import sqlite3
import subprocess
import sys

import numpy as np
import pytest

from edged.errors import GalleryError
from edged.gallery import Gallery


def unit(*values: float) -> np.ndarray:
    v = np.array(values, np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def gallery(tmp_path):
    with Gallery(tmp_path / "g.db") as g:
        yield g


def test_match_uses_best_embedding_of_each_person(gallery):
    gallery.enroll("alice", np.stack([unit(1, 0, 0), unit(0, 1, 0)]), "m1")
    gallery.enroll("bob", unit(0, 0, 1)[None], "m1")
    found = gallery.match(np.stack([unit(0.1, 1, 0), unit(0, 0.1, 1), unit(-1, -1, -1)]), "m1", 0.5)
    assert [i.person for i in found] == ["alice", "bob", None]
    assert found[0].similarity == pytest.approx(float(unit(0.1, 1, 0) @ unit(0, 1, 0)), abs=1e-6)


def test_only_the_models_own_embeddings_are_compared(gallery):
    gallery.enroll("alice", unit(1, 0, 0)[None], "model-a")
    assert gallery.match(unit(1, 0, 0)[None], "model-b", 0.5)[0].person is None
    assert gallery.model_ids() == {"model-a": 1}


def test_remove_rename_list(gallery):
    gallery.enroll("alice", unit(1, 0, 0)[None], "m1")
    gallery.enroll("alice", unit(1, 1, 0)[None], "m2")
    gallery.enroll("bob", unit(0, 1, 0)[None], "m1")
    assert [(p.name, p.embeddings) for p in gallery.people()] == [
        ("alice", {"m1": 1, "m2": 1}), ("bob", {"m1": 1})]
    gallery.rename("alice", "carol")
    assert gallery.match(unit(1, 0, 0)[None], "m1", 0.5)[0].person == "carol"
    with pytest.raises(GalleryError, match="'bob' already exists"):
        gallery.rename("carol", "bob")
    assert gallery.remove("carol") == 2
    with pytest.raises(GalleryError, match="no person 'carol' in the gallery"):
        gallery.remove("carol")


@pytest.mark.parametrize("name", ["a/b", "<img src=x onerror=alert(1)>", "a+b", "x\ny", "bob\x00", "   ",
                                  "-rf", "'quoted", "a" * 65, "name#1", "tab\there"])
def test_names_outside_the_rule_are_refused_everywhere(gallery, tmp_path, name):
    with pytest.raises(GalleryError, match="name"):
        gallery.enroll(name, unit(1, 0)[None], "m1")
    gallery.enroll("alice", unit(1, 0)[None], "m1")
    with pytest.raises(GalleryError, match="name"):
        gallery.rename("alice", name)
    anonymous = gallery.new_anonymous(unit(0, 1)[None], "m1")
    with pytest.raises(GalleryError, match="name"):
        gallery.name_anonymous(anonymous, name)
    assert sorted(p.name for p in gallery.people()) == ["alice", anonymous]


@pytest.mark.parametrize("name", ["José Núñez", "küche", "Zoë O'Brien", "李小龙", "अमिताभ", "Jean-Luc 2", "dr. who_x"])
def test_names_of_any_script_are_welcome(gallery, name):
    gallery.enroll(name, unit(1, 0)[None], "m1")
    assert gallery.match(unit(1, 0)[None], "m1", 0.5)[0].person == name


def export_with(vector: object, name: object = "alice", **item: object) -> dict:
    return {"format": "edged-gallery", "version": 1, "model_id": "m1", "dtype": "float32-le-base64",
            "people": [{"name": name, "embeddings": [{"vector": vector, **item}]}]}


def b64(values) -> str:
    import base64

    return base64.b64encode(np.asarray(values, "<f4").tobytes()).decode()


@pytest.mark.parametrize(("document", "message"), [
    (export_with(b64(unit(1, 0, 0, 0))), "16 bytes, but this model's embeddings are 3 float32"),
    (export_with(b64(np.ones(512) / np.sqrt(512))), "2048 bytes"),
    (export_with("***"), "not valid base64"),
    (export_with(""), "0 bytes"),
    (export_with(b64([np.nan, 0, 0])), "not a unit-length embedding"),
    (export_with(b64([3.0, 0, 0])), "not a unit-length embedding .length 3"),
    (export_with(b64(unit(1, 0, 0)), name=7), "people\\[1\\].name: 7 is not a usable name"),
    (export_with(b64(unit(1, 0, 0)), name="<b>x</b>"), "not a usable name"),
    (export_with(12345), "must be an object with a base64"),
    (export_with(b64(unit(1, 0, 0)), created="yesterday"), "created. a number"),
    ({"format": "edged-gallery", "model_id": "m1", "people": {"alice": []}}, "must be a list"),
    ({"format": "edged-gallery", "model_id": "m1", "people": [["alice"]]}, "people\\[1\\]: must be an object"),
])
def test_poisoned_imports_are_refused_whole(gallery, tmp_path, document, message):
    gallery.enroll("bob", unit(0, 1, 0)[None], "m1")
    good = export_with(b64(unit(1, 0, 0)), name="carol")
    document = {**document, "people": [*good["people"], *document["people"]]} if isinstance(
        document["people"], list) else document
    path = tmp_path / "poison.json"
    path.write_text(json.dumps(document))
    with pytest.raises(GalleryError, match=message):
        gallery.import_file(path, "m1", 3)
    assert [p.name for p in gallery.people()] == ["bob"], "the gallery is unchanged, carol included"
    assert gallery.match(unit(0, 1, 0)[None], "m1", 0.5)[0].person == "bob"


def test_export_import_round_trip_and_model_check(gallery, tmp_path):
    gallery.enroll("alice", np.stack([unit(1, 0, 0), unit(1, 1, 0)]), "m1")
    gallery.enroll("bob", unit(0, 0, 1)[None], "m2")
    out = tmp_path / "export.json"
    assert gallery.export(out, "m1") == 2
    document = json.loads(out.read_text())
    assert document["model_id"] == "m1" and document["format"] == "edged-gallery"
    with Gallery(tmp_path / "other.db") as other:
        assert other.import_file(out, "m1", 3) == 2
        assert other.import_file(out, "m1", 3) == 0  # nothing is added twice
        assert other.match(unit(1, 0.9, 0)[None], "m1", 0.9)[0].person == "alice"
        with pytest.raises(GalleryError, match="made by model m1, but this box uses m2"):
            other.import_file(out, "m2", 3)


def test_import_refuses_files_that_are_not_exports(gallery, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"hello": 1}')
    with pytest.raises(GalleryError, match="not an edged gallery export"):
        gallery.import_file(bad, "m1", 3)
    with pytest.raises(GalleryError, match="cannot read gallery export"):
        gallery.import_file(tmp_path / "missing.json", "m1", 3)


def test_database_uses_wal_and_refuses_garbage(tmp_path):
    with Gallery(tmp_path / "g.db"):
        pass
    assert sqlite3.connect(tmp_path / "g.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(GalleryError, match="junk.db: not a usable gallery database"):
        Gallery(junk)


CRASH_MID_WRITE = """
import os, sys, numpy as np
sys.path.insert(0, {root!r})
from edged.gallery import Gallery
g = Gallery(__import__('pathlib').Path({path!r}))
g._db.execute("BEGIN IMMEDIATE")
g._db.execute("INSERT INTO people(name, created) VALUES ('half', 0)")
g._db.execute("INSERT INTO embeddings(person_id, model_id, vector, created) "
              "VALUES (last_insert_rowid(), 'm1', zeroblob(12), 0)")
os._exit(9)  # the process dies in the middle of the write, as on a power cut
"""


def test_a_write_cut_off_midway_leaves_the_old_state(tmp_path):
    from .conftest import ROOT

    path = tmp_path / "g.db"
    with Gallery(path) as g:
        g.enroll("alice", unit(1, 0, 0)[None], "m1")
    proc = subprocess.run([sys.executable, "-c", CRASH_MID_WRITE.format(root=str(ROOT), path=str(path))])
    assert proc.returncode == 9
    with Gallery(path) as g:
        assert [p.name for p in g.people()] == ["alice"]
        assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"



def test_a_stranger_seen_again_keeps_the_id_and_a_new_face_gets_the_next(gallery):
    """Match-or-create in one step under the gallery's lock (several inference workers name
    strangers): a face like a stranger's is that stranger, a different one is the next id."""
    first = gallery.stranger_for(np.stack([unit(1.0, 0.0, 0.0, 1.0), unit(1.0, 0.05, 0.0, 1.0)]), "m", 0.9, "door")
    again = gallery.stranger_for(np.stack([unit(1.0, 0.02, 0.0, 1.0)]), "m", 0.9, "yard")
    other = gallery.stranger_for(np.stack([unit(0.0, 1.0, 0.0, 0.0)]), "m", 0.9, "yard")
    elsewhere = gallery.stranger_for(np.stack([unit(1.0, 0.0, 0.0, 1.0)]), "other-model", 0.9)
    assert first == again == "unknown-1"
    assert other == "unknown-2" and elsewhere == "unknown-3", "another model's vectors are never compared"
