"""geocorr.data.paths.inside: the one containment check every reader and writer uses."""

import os

import pytest

from geocorr.data.pairs import DatasetFormatError
from geocorr.data.paths import inside


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "root"
    (root / "JPEGImages" / "car").mkdir(parents=True)
    (root / "JPEGImages" / "car" / "a.jpg").write_bytes(b"x")
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.jpg").write_bytes(b"s")
    return root


def test_plain_and_inner_dotdot_are_returned_as_spelt(tree):
    assert inside(tree, "JPEGImages", "car", "a.jpg", source="f.json") == \
        tree / "JPEGImages" / "car" / "a.jpg"
    # '..' that stays inside is fine, and the path is not rewritten
    p = inside(tree, "JPEGImages", "car", "../car/a.jpg", source="f.json")
    assert p == tree / "JPEGImages" / "car" / "../car/a.jpg" and p.is_file()
    assert inside(tree, "missing", "x.jpg", source="f.json") == tree / "missing" / "x.jpg"


def test_traversal_names_source_and_value(tree):
    with pytest.raises(DatasetFormatError) as e:
        inside(tree, "JPEGImages", "car", "../../../outside/secret.jpg",
               source="pairs/1.json", what="image")
    msg = str(e.value)
    assert msg.startswith("pairs/1.json: image ")
    assert "../../../outside/secret.jpg" in msg and "outside" in msg
    assert isinstance(e.value, ValueError)  # the CLI maps it to exit 2
    with pytest.raises(DatasetFormatError, match="points outside"):
        inside(tree, "..", source="x")


def test_absolute_parts_are_refused_even_inside(tree):
    with pytest.raises(DatasetFormatError, match="'/etc/passwd' is an absolute path"):
        inside(tree, "/etc/passwd", source="f.csv:3")
    with pytest.raises(DatasetFormatError, match="absolute path"):
        inside(tree, "JPEGImages", str(tree / "JPEGImages" / "car" / "a.jpg"), source="f")


def test_symlink_escaping_the_root_is_refused(tree, tmp_path):
    link = tree / "JPEGImages" / "car" / "link.jpg"
    link.symlink_to(tmp_path / "outside" / "secret.jpg")
    with pytest.raises(DatasetFormatError, match="symbolic link") as e:
        inside(tree, "JPEGImages", "car", "link.jpg", source="ann.json")
    assert "ann.json" in str(e.value) and "link.jpg" in str(e.value)
    # a linked folder leading out is refused too, whatever is below it
    (tree / "JPEGImages" / "dog").symlink_to(tmp_path / "outside", target_is_directory=True)
    with pytest.raises(DatasetFormatError, match="symbolic link"):
        inside(tree, "JPEGImages", "dog", "secret.jpg", source="ann.json")
    # '..' after a link is taken from the link's target, as the OS does
    with pytest.raises(DatasetFormatError, match="symbolic link"):
        inside(tree, "JPEGImages", "dog", "..", "outside", "secret.jpg", source="ann.json")


def test_symlink_staying_inside_is_fine(tree):
    link = tree / "JPEGImages" / "car" / "b.jpg"
    link.symlink_to(tree / "JPEGImages" / "car" / "a.jpg")
    assert inside(tree, "JPEGImages", "car", "b.jpg", source="f") == link


def test_symlinked_root_itself_is_fine(tree, tmp_path):
    alias = tmp_path / "alias"
    alias.symlink_to(tree, target_is_directory=True)
    assert inside(alias, "JPEGImages", "car", "a.jpg", source="f") == \
        alias / "JPEGImages" / "car" / "a.jpg"
    with pytest.raises(DatasetFormatError):
        inside(alias, "..", "outside", "secret.jpg", source="f")


def test_relative_root_and_nul_byte(tree, monkeypatch):
    monkeypatch.chdir(tree.parent)
    assert inside("root", "JPEGImages", source="f") == type(tree)("root/JPEGImages")
    with pytest.raises(DatasetFormatError, match="outside"):
        inside("root", "../outside/secret.jpg", source="f")
    with pytest.raises(DatasetFormatError, match="NUL"):
        inside(tree, "a\0b.jpg", source="f")
    assert os.fspath(inside(tree, source="f")) == os.fspath(tree)


def test_confined_root_resolved_once_checks_like_inside(tree, tmp_path):
    from geocorr.data.paths import Confined

    c = Confined(tree)
    assert c.join("JPEGImages", "car", "a.jpg", source="f") == \
        inside(tree, "JPEGImages", "car", "a.jpg", source="f")
    (tree / "JPEGImages" / "car" / "link.jpg").symlink_to(tmp_path / "outside" / "secret.jpg")
    for parts in (("..", "outside"), ("/etc/passwd",), ("JPEGImages", "car", "link.jpg")):
        with pytest.raises(DatasetFormatError, match="f.json: image"):
            c.join(*parts, source="f.json", what="image")
