"""report.html: written by `vsum evaluate` and `vsum baselines`, self-contained (every picture a
data URI, nothing fetched), with the tables, provenance flags, per-video sections and links.
No browser here (tests/test_report_browser.py renders it)."""
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from jobs.cli import main as vsum
from report_fixtures import VIDEOS, make_run, make_store, noise, oracle

REPO = Path(__file__).resolve().parents[1]


class Page(HTMLParser):
    """Collects what the structure tests look at."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.tables: dict[str, list[list[str]]] = {}  # table class/id -> rows of cell texts
        self._table, self._row, self._cell = None, None, None
        self.text = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "table":
            self._table = a.get("id") or a.get("class") or f"table{len(self.tables)}"
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = []
            self.tables[self._table].append(self._row)
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("report")
    store = make_store(d)
    return d, store, make_run(d, store, "oracle", oracle), make_run(d, store, "rand", noise)


def _assert_self_contained(page: Page):
    imgs = [a for t, a in page.tags if t == "img"]
    assert imgs and all(a["src"].startswith(("data:image/png;base64,", "data:image/jpeg;base64,"))
                        for a in imgs)
    for tag, a in page.tags:
        assert tag not in ("link", "iframe", "object", "embed")
        if tag == "script":
            assert "src" not in a
        for key in ("src", "href"):
            assert not str(a.get(key, "")).startswith(("http:", "https:", "//", "ftp:"))
    csp = [a for t, a in page.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0]["content"]


def test_vsum_evaluate_writes_a_self_contained_report(setup, dask_client):
    d, store, run_a, run_b = setup
    report = d / "eval_report"
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "vsum"), "evaluate", run_a, run_b, "--store", store,
         "--report", str(report), "--curves", "3", "--scheduler", dask_client.scheduler.address],
        capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    # the printed table has the features column and flags the random-init features
    assert "googlenet (random-init(seed=0)) ⚠" in proc.stdout
    assert "randomly initialised" in proc.stdout
    html = (report / "report.html").read_text()
    page = Page(html)
    _assert_self_contained(page)
    results = page.tables["results"]
    assert results[0][:4] == ["method", "setting", "selection", "features (weights)"]
    body = {r[0]: r for r in results[1:]}
    assert set(body) == {"oracle", "rand"}
    assert "RANDOM INIT" in body["oracle"][3] and "random-init(seed=0)" in body["oracle"][3]
    assert body["oracle"][2] == "fixed-epochs"
    assert "±" in body["oracle"][4] and body["oracle"][-1] == "3"
    assert 'id="random-init-banner"' in html
    # per video: one section per video with both methods' curves in one plot
    for v in VIDEOS:
        assert f'id="video-{v}"' in html
    assert html.count('class="plot"') == 3
    section = {v: html.split(f'id="video-{v}"')[1].split('class="video"')[0] for v in VIDEOS}
    assert all(f"<strong>{m}</strong>" in section[v] for m in ("oracle", "rand") for v in VIDEOS)
    assert "data:image/jpeg" in section["va"] and "thumbnails omitted" not in section["va"]
    assert "data:image/jpeg" in section["vb"] and "thumbnails decoded from" in section["vb"]
    assert "data:image/jpeg" not in section["vc"] and "thumbnails omitted" in section["vc"]
    # sortable per-video table: one row per (method, video)
    pv = page.tables["per-video"]
    assert pv[0][:3] == ["method", "dataset", "video"] and len(pv) == 1 + 2 * len(VIDEOS)
    assert 'class="sortable"' in html and "addEventListener" in html
    # links to the Parquet files, which exist
    hrefs = [a["href"] for t, a in page.tags if t == "a"]
    assert {"per_video.parquet", "summary.parquet"} <= set(hrefs)
    assert all((report / h).exists() for h in hrefs)
    assert (report / "report.md").exists() and "⚠" in (report / "report.md").read_text()


def test_vsum_baselines_writes_report_html_with_the_stores_provenance(setup, dask_client, capsys):
    d, store, _, _ = setup
    report = d / "baselines_report"
    code = vsum(["baselines", "--store", store, "--report", str(report), "--seeds", "2",
                 "--scheduler", dask_client.scheduler.address])
    assert code == 0
    page = Page((report / "report.html").read_text())
    _assert_self_contained(page)
    rows = {r[0]: r for r in page.tables["results"][1:]}
    assert {"human-loo", "random", "uniform", "middle"} <= set(rows)
    assert rows["random"][3] == "– (uses no features)"
    # baselines use no features, but the page still says what the store's features are
    html = (report / "report.html").read_text()
    banner = html.split('id="random-init-banner"')[1].split("</div>")[0]
    assert "googlenet (random-init(seed=0))" in banner and "recorded in" in banner


def test_template_ships_with_the_package(tmp_path):
    """The template is package data: setuptools' build (what an install copies) carries it, and
    the built package finds and renders it without this source tree."""
    build = tmp_path / "lib"
    proc = subprocess.run([sys.executable, "-c", "import sys, setuptools; sys.argv = ['setup.py', "
                           f"'-q', 'build_py', '--build-lib', {str(build)!r}]; setuptools.setup()"],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (build / "jobs" / "templates" / "report.html.j2").is_file()
    probe = ("import jobs.report_html as r; t = r._environment().get_template('report.html.j2'); "
             "print(r.__file__); print(t.filename)")
    proc = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(build)}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    module, template = proc.stdout.split()
    assert module.startswith(str(build)) and template.startswith(str(build))
