"""The README links only inside the repository, to files that exist."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\]\(([^)]+)\)")


def test_readme_links_stay_inside_the_repository_and_resolve():
    for name in ("README.md", "docs/architecture.md"):
        page = ROOT / name
        # A path out of the checkout (e.g. `../shared/ARCHITECTURE.md`), linked or quoted.
        assert "../" not in page.read_text(), f"{name} points outside the repository"
        for target in LINK.findall(page.read_text()):
            if target.startswith(("http://", "https://", "#")):
                continue
            path = (page.parent / target.split("#")[0]).resolve()
            assert path.is_relative_to(ROOT), f"{name} links outside the repository: {target}"
            assert path.exists(), f"{name} links to a missing file: {target}"
