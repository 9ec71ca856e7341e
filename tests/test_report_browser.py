"""report.html in a real browser: headless Chromium loads it (over the DevTools protocol,
``tests/cdp_pipe.py``), every request the page makes is recorded, and a full-page screenshot
must not be blank. Skips where Chromium is not installed."""
import shutil

import numpy as np
import pytest

from cdp_pipe import load_and_screenshot
from jobs.evaluate import evaluate_runs
from report_fixtures import make_run, make_store, noise, oracle

CHROMIUM = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p),
                None)
pytestmark = pytest.mark.skipif(CHROMIUM is None,
                                reason="Chromium is not installed (Debian: apt-get install chromium)")


def _pixels(png):
    from PIL import Image

    return np.asarray(Image.open(png).convert("RGB"))


def test_report_renders_in_chromium_without_network(tmp_path, dask_client):
    store = make_store(tmp_path)
    runs = [make_run(tmp_path, store, "oracle", oracle), make_run(tmp_path, store, "rand", noise)]
    report = tmp_path / "report"
    evaluate_runs(runs, report_dir=str(report), client=dask_client)
    page = (report / "report.html").as_uri()
    png = tmp_path / "report.png"
    requests = load_and_screenshot(CHROMIUM, page, str(png), str(tmp_path / "profile"))
    # the page itself, then only its inlined pictures: nothing from the network, no other file
    assert requests[0] == page
    assert [u for u in requests[1:] if not u.startswith(("data:image/png;", "data:image/jpeg;"))] == []
    assert len(requests) > 5  # the plots and thumbnails were loaded (as data URIs)
    img = _pixels(png)
    assert img.shape[1] >= 1200 and img.shape[0] > 2000  # the whole page, not a viewport
    # not blank: text, tables, plots and thumbnails give many colours and dark pixels
    assert len(np.unique(img.reshape(-1, 3), axis=0)) > 200
    assert (img.sum(axis=2) < 150).mean() > 0.002
    # the random-init banner is drawn (its border is red: (198, 40, 40))
    red = (np.abs(img.astype(int) - [198, 40, 40]).sum(axis=2) < 30).sum()
    assert red > 500


def test_a_page_that_fetches_is_caught(tmp_path):
    """The no-request check can fail: a remote image shows up among the page's requests."""
    page = tmp_path / "fetches.html"
    page.write_text('<html><body><img src="http://vsum-probe.invalid/x.png">hello</body></html>')
    requests = load_and_screenshot(CHROMIUM, page.as_uri(), str(tmp_path / "f.png"),
                                   str(tmp_path / "profile"))
    assert "http://vsum-probe.invalid/x.png" in requests
