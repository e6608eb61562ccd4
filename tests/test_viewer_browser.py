"""The viewer page in a real headless browser (Debian's chromium).

The page is opened with a URL hash that clicks (a real ``click`` event) at a
known source keypoint; ``--dump-dom`` returns the DOM after the page's
scripts ran, and the test reads the matches the page reports per feature
kind from ``<pre id="geocorr-matches">`` and compares them with the nearest
neighbour computed in Python on the grids embedded in the same page.

chromium is installed by ``make test`` (hence ``.ci/run``) when absent; this
file also tries ``apt-get install -y chromium`` as root. It skips only when
chromium can be neither found nor installed, and fails instead when
``GEOCORR_REQUIRE_BROWSER=1`` (set by the Makefile's test target).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from geocorr.cli import app
from geocorr.viewer.grid import cell_center, nearest_cell, query_cell
from geocorr.viewer.page import read_page_data

NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")


def _find() -> str | None:
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    path = _find()
    if path is None and hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-q", "chromium"], capture_output=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, timeout=900,
                       check=False)
        path = _find()
    if path is None:
        reason = ("chromium not found and could not be installed (as root: apt-get install -y "
                  "chromium; `make test` does it)")
        if os.environ.get("GEOCORR_REQUIRE_BROWSER") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    profile = tmp_path_factory.mktemp("chromium-profile")
    return [path, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--no-first-run", f"--user-data-dir={profile}"]


def page_state(browser, url: str, screenshot=None, size=(1400, 1000)) -> dict:
    """The matches the page reports after loading ``url`` (its JSON ``geocorr-matches`` box).

    One chromium launch: ``--dump-dom`` (+ ``--screenshot`` of the same state when given).
    """
    shot = ([f"--window-size={size[0]},{size[1]}", f"--screenshot={screenshot}"]
            if screenshot else [])
    res = subprocess.run([*browser, *shot, "--dump-dom", url], capture_output=True, text=True,
                         timeout=120, check=False)
    assert res.returncode == 0, res.stderr[-2000:]
    m = re.search(r'<pre id="geocorr-matches"[^>]*>(.*?)</pre>', res.stdout, re.S)
    assert m is not None, res.stdout[-2000:]
    return json.loads(html.unescape(m.group(1)))


def check_against_python(data: dict, state: dict, pair: int = 0) -> None:
    """Every kind's reported query cell, match cell, position and cosine = Python's."""
    grids = data["pairs"][pair]["grids"]
    assert set(state["matches"]) == set(grids) == set(data["kinds"])
    qx, qy = state["query"]["x"], state["query"]["y"]
    for kind, g in grids.items():
        m = state["matches"][kind]
        cell = query_cell(g["source"], qx, qy)
        assert tuple(m["query_cell"]) == cell, kind
        best, sim = nearest_cell(g["source"], g["target"], cell)
        assert tuple(m["cell"]) == best, kind
        assert m["similarity"] == pytest.approx(sim, abs=1e-9), kind
        assert (m["x"], m["y"]) == pytest.approx(cell_center(g["target"], *best)), kind


def test_click_in_chromium_reports_pythons_nearest_neighbours(browser, tmp_path):
    from test_viewer import view_args, write_scene_files

    kps = write_scene_files(tmp_path)
    page = tmp_path / "view.html"
    res = CliRunner().invoke(app, view_args(tmp_path, page))
    assert res.exit_code == 0, res.output
    data = read_page_data(page.read_text())
    assert data["kinds"] == ["classical", "rendered part descriptor", "fused"]
    x, y = kps[0][1]  # the box's top front-right corner in the source image
    shot = tmp_path / "viewer.png"
    state = page_state(browser, f"{page.as_uri()}#click={x},{y}&keypoints=1", screenshot=shot)
    # the click event went through the canvas' screen geometry and back: chromium rounds
    # event coordinates to whole CSS pixels (display_side 320 CSS px across 128 image px)
    css_px = 128 / data["display_side"]
    assert (state["query"]["x"], state["query"]["y"]) == pytest.approx((x, y), abs=css_px)
    check_against_python(data, state)
    # arrow keys move the query by one cell of the first kind's grid
    moved = page_state(browser, f"{page.as_uri()}#click={x},{y}&keys=ArrowRight,ArrowDown")
    first = state["matches"]["classical"]["query_cell"]
    assert moved["matches"]["classical"]["query_cell"] == [first[0] + 1, first[1] + 1]
    check_against_python(data, moved)
    # the screenshot of the clicked state
    assert shot.stat().st_size > 0
    im = np.asarray(Image.open(shot).convert("RGB"))
    assert im.shape == (1000, 1400, 3) and im.std() > 10


def _demo_like(root):
    """A small ``geocorr demo --out`` folder: benchmark at oracle, stage 1 on its test images."""
    from geocorr.data.synth.generate import SynthSettings, generate_dataset, with_error_level
    from geocorr.reconstruct.pipeline import Stage1Settings, dataset_images, run_stage1
    from geocorr.reconstruct.reconstructor import simulated_reconstructor
    from geocorr.reconstruct.refine import RefineSettings
    from geocorr.reconstruct.segmenter import default_segmenter
    from geocorr.reconstruct.template import TemplateSettings
    from geocorr.reconstruct.views import ViewSettings
    from geocorr.reconstruct.yaw_vote import VoteSettings

    s = SynthSettings(seed=0, categories=("car",), images_per_category=8,
                      pairs_per_split=(0, 0, 12))
    generate_dataset(root / "data", with_error_level(s, "oracle"), progress=False)
    fast = Stage1Settings(
        refine=RefineSettings(max_side=48, dt_steps=8, iou_steps=4, polish_side=128),
        vote=VoteSettings(views=ViewSettings(size=48)),
        template=TemplateSettings(num_azimuths=36, points=300))
    run_stage1(root / "data", dataset_images(root / "data", "test"),
               default_segmenter(root / "data"), simulated_reconstructor(root / "data"),
               root / "stage1", fast, progress=False)


def test_demo_viewer_needs_a_demo_folder(tmp_path):
    from geocorr.viewer import write_demo_viewer

    with pytest.raises(FileNotFoundError, match="demo --out folder"):
        write_demo_viewer(tmp_path, tmp_path / "v.html")
    assert not (tmp_path / "v.html").exists()


@pytest.mark.slow
def test_demo_viewer_opens_on_a_twin_swap_that_fusion_fixes(browser, tmp_path):
    """Issue 16: the demo's page shows, for a pair chosen automatically, the 2D match on the
    twin part and the fused one on the right part (read back from chromium)."""
    from geocorr.viewer import write_demo_viewer

    _demo_like(tmp_path / "demo")
    rec = write_demo_viewer(tmp_path / "demo", tmp_path / "demo" / "viewer.html", max_pairs=3)
    assert rec.showcase and rec.showcase[0], rec
    data = read_page_data(rec.path.read_text())
    pair = data["pairs"][0]
    kp = pair["keypoints"]
    i = kp["ids"].index(rec.showcase[0][0])
    assert pair["start"] == kp["source"][i]
    state = page_state(browser, f"{rec.path.as_uri()}#pair=0&keypoints=1",
                       screenshot=tmp_path / "demo.png")
    check_against_python(data, state)
    tol = data["alpha"] * kp["threshold"]
    gt, twins = np.array(kp["target"][i]), np.array(kp["twins"][i])

    def where(kind):
        return np.array([state["matches"][kind]["x"], state["matches"][kind]["y"]])

    assert np.linalg.norm(where("xfeat") - gt) >= tol
    assert np.linalg.norm(twins - where("xfeat"), axis=1).min() < tol
    assert np.linalg.norm(where("fused") - gt) < tol
    assert (tmp_path / "demo.png").stat().st_size > 0
