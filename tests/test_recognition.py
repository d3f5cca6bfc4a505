"""Recognition on real photos with both real MobileFaceNets: only their specs differ."""

import numpy as np
import pytest

from edged.engine import EngineOptions, FaceEngine
from edged.gallery import Gallery
from edged.io.images import load_image

from .conftest import DATA, NO_SHARED

if NO_SHARED:  # its parameters are read from ../shared as the module loads
    pytest.skip(NO_SHARED, allow_module_level=True)

PEOPLE = sorted(p.name for p in (DATA / "faces").iterdir())
NOT_ENROLLED = "paul_rudd"  # left out of the gallery to stand for a stranger


@pytest.fixture(scope="module")
def engine(embedder_name):
    return FaceEngine(EngineOptions(embedder=embedder_name))


@pytest.fixture(scope="module")
def gallery(engine, tmp_path_factory):
    """The first photo of each person but one, enrolled through the engine."""
    path = tmp_path_factory.mktemp("gallery") / "gallery.db"
    with Gallery(path) as g:
        for person in PEOPLE:
            if person == NOT_ENROLLED:
                continue
            first = sorted((DATA / "faces" / person).iterdir())[0]
            vector, _ = engine.embed_for_enroll(load_image(first), str(first))
            g.enroll(person, vector[None], engine.embedder.model_id, str(first))
    gallery = Gallery(path)
    yield gallery
    gallery.close()


def people_in(engine, gallery, relative: str) -> list[str | None]:
    return [f.identity.person for f in engine.identify(load_image(DATA / relative), gallery)]


@pytest.mark.parametrize("photo, person", [
    ("faces/obama/obama2.jpg", "obama"),
    ("faces/biden/biden2.jpg", "biden"),
    ("faces/kit_harington/john2.jpeg", "kit_harington"),
    ("faces/rose_leslie/img2.jpg", "rose_leslie"),
    ("images/johnsnow_test1.jpg", "kit_harington"),
    ("images/alex_lacamoire1.jpg", "alex_lacamoire"),
    ("images/obama1.jpg", "obama"),
])
def test_single_person_photos(engine, gallery, photo, person):
    assert people_in(engine, gallery, photo) == [person]


@pytest.mark.parametrize("photo, people", [
    ("images/obama_and_biden.jpg", {"obama", "biden"}),
    ("images/kit_with_rose.jpg", {"kit_harington", "rose_leslie"}),
])
def test_group_photos(engine, gallery, photo, people):
    found = people_in(engine, gallery, photo)
    assert {p for p in found if p} == people
    assert sum(p is not None for p in found) == len(people), f"someone else was named: {found}"


def test_person_not_enrolled_is_unknown(engine, gallery):
    assert people_in(engine, gallery, f"faces/{NOT_ENROLLED}/1.jpg") == [None]


def test_strangers_in_group_photo_are_unknown(engine, gallery):
    assert set(people_in(engine, gallery, "images/multiface.jpg")) == {None}


def test_embeddings_are_unit_vectors_of_the_spec_size(engine):
    image = load_image(DATA / "images" / "kit_with_rose.jpg")
    faces = engine.detector.detect(image)
    vectors = engine.embedder.embed(image, faces)
    assert vectors.shape == (len(faces), engine.embedder_spec.output_size)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_batch_and_single_embeddings_agree(engine):
    image = load_image(DATA / "images" / "multiface.jpg")
    faces = engine.detector.detect(image)
    batched = engine.embedder.embed(image, faces)
    one_by_one = np.concatenate([engine.embedder.embed(image, faces[[i]]) for i in range(len(faces))])
    np.testing.assert_allclose(batched, one_by_one, atol=1e-4)


def test_aligned_crop_puts_eyes_on_the_template(engine):
    """The five-point alignment really moves the landmarks onto the template."""
    from edged.vision.align import ARCFACE_TEMPLATE_112, similarity_transform

    image = load_image(DATA / "images" / "obama1.jpg")
    faces = engine.detector.detect(image)
    matrix = similarity_transform(faces.landmarks[0], ARCFACE_TEMPLATE_112)
    moved = faces.landmarks[0] @ matrix[:, :2].T + matrix[:, 2]
    assert np.abs(moved - ARCFACE_TEMPLATE_112).max() < 6.0  # pixels of the 112 px crop
