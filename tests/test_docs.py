"""The README is a quickstart whose links resolve, and the manual in docs/ builds with MkDocs
in strict mode: every page in the navigation, every link between pages and every anchor found."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from .conftest import ROOT

LINK = re.compile(r"\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """MkDocs' (Python-Markdown toc's) anchor for a heading."""
    text = re.sub(r"[`*_]", "", heading).strip().lower()
    return re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", text))


def broken_links(page: Path) -> list[str]:
    broken = []
    for target in LINK.findall(page.read_text(encoding="utf-8")):
        if re.match(r"[a-z]+:", target):
            continue  # a URL: not ours to resolve offline
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        if not file.is_file():
            broken.append(target)
        elif anchor and anchor not in {slug(h) for h in re.findall(r"^#+ (.+)$", file.read_text(), re.M)}:
            broken.append(target)  # only pages have anchors (the README links a picture too)
    return broken


def mkdocs_build(folder: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)], cwd=folder,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


def test_readme_is_a_quickstart_whose_links_resolve():
    readme = ROOT / "README.md"
    text = readme.read_text()
    assert len(text.splitlines()) <= 160, "the README is a quickstart; the manual lives in docs/"
    assert text.index("bash tools/demo.sh") < text.index("## Quickstart")  # the two commands come first
    assert broken_links(readme) == []
    linked = {Path(t.partition("#")[0]).name for t in LINK.findall(text) if t.startswith("docs/")}
    pages = {p.name for p in (ROOT / "docs").glob("*.md")} - {"index.md"}
    assert pages <= linked, f"pages the README does not link: {sorted(pages - linked)}"


def test_the_manual_builds_strictly_and_a_broken_link_fails_it(tmp_path):
    built = mkdocs_build(ROOT, tmp_path / "site")
    assert built.returncode == 0, built.stderr[-3000:]
    assert (tmp_path / "site" / "home-assistant" / "index.html").is_file()
    # The check can fail: the same manual with one link to a missing page does not build.
    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "docs", copy / "docs")
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    with (copy / "docs" / "commands.md").open("a") as page:
        page.write("\nSee [the missing page](missing.md).\n")
    broken = mkdocs_build(copy, tmp_path / "site2")
    assert broken.returncode != 0 and "missing.md" in broken.stderr, broken.stderr[-3000:]
    for page in (ROOT / "docs").glob("*.md"):
        assert broken_links(page) == [], page.name
