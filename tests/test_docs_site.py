"""The documentation site: ``mkdocs build --strict`` of docs/mkdocs.yml, and (slow) the
built pages in a real headless Chromium.

The browser test needs Debian's Chromium (``apt-get install chromium``); run it with
``python -m pytest tests/test_docs_site.py -m slow``. It also rewrites the screenshot of the
index page committed as docs/img/docs_site_index.png.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: relative to the repository root, as the docs say to pass it (mkdocs refuses an absolute
#: path to a config file inside its own docs_dir, see docs/mkdocs.yml)
CONFIG = "docs/mkdocs.yml"

pytest.importorskip("mkdocs")
pytest.importorskip("material")
pytest.importorskip("mkdocstrings_handlers.python")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", CONFIG, "-d", str(out)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=300,
        env={"NO_MKDOCS_2_WARNING": "1", "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


def test_the_site_builds_strictly_with_every_page_and_the_api(site):
    for page in ("index.html", "getting_started/index.html", "api/evaluation/index.html"):
        assert (site / page).is_file(), page
    api = (site / "api" / "evaluation" / "index.html").read_text()
    assert 'id="hint_envs.evaluation.evaluate.evaluate"' in api  # generated from the docstring
    assert "identical for any number" in api or "workers" in api
    assert (site / "results" / "recipe_pusht_long.png").is_file()  # results keep their plots


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no Chromium here: apt-get install chromium")


@pytest.mark.slow
def test_the_pages_render_in_a_headless_browser(site):
    browser = _chromium()
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--allow-file-access-from-files"]

    def dom(page: str) -> str:
        result = subprocess.run(
            [browser, *flags, "--dump-dom", (site / page).as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    index = dom("index.html")
    assert "<h1" in index and "hint_envs" in index
    api = dom("api/policies/index.html")
    assert "DDPMChunkingPolicy" in api and 'class="doc doc-heading"' in api
    shot = REPO / "docs" / "img" / "docs_site_index.png"
    subprocess.run(
        [
            browser,
            *flags,
            "--window-size=1280,900",
            f"--screenshot={shot}",
            (site / "index.html").as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert shot.stat().st_size > 10_000
