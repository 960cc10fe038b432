"""The study report and the drift page in a real headless Chromium: every plotly figure renders, and the
page logs no console error. A screenshot of each page is saved under the test's temporary directory."""

import os
from pathlib import Path

import pytest

from modlens.cli import main
from modlens.models import save_model, tiny_model
from tests.drift.conftest import planted

pytestmark = pytest.mark.slow

# As root on a machine with no network: no sandbox, and none of Chromium's background calls home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
RENDER_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser(chromium):
    try:
        import playwright.sync_api as playwright
    except ImportError:
        if os.environ.get("MODLENS_REQUIRE_BROWSER") == "1":
            pytest.fail("the browser test needs playwright (a dev dependency), but MODLENS_REQUIRE_BROWSER=1")
        pytest.skip("the browser test drives Chromium with playwright: pip install playwright")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def study_report(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("browser") / "study"
    assert main(["study", "--preset", "tiny", "--out", str(out), "--no-progress"]) == 0
    return out / "report.html"


@pytest.fixture(scope="module")
def drift_page(tmp_path_factory, tokenizer) -> Path:
    root = tmp_path_factory.mktemp("browser_drift")
    base = tiny_model("gpt_neox", tokenizer=tokenizer, n_layers=2, d_model=32, n_heads=4, n_ctx=32)
    save_model(base, root / "base")
    save_model(planted(base, "gpt_neox", 1), root / "tuned")
    args = ["drift", str(root / "base"), str(root / "tuned"), "--task", "reverse", "--n-examples", "8"]
    assert main([*args, "--out", str(root / "out")]) == 0
    return root / "out" / "drift.html"


def render(browser, page_path: Path, screenshot: Path) -> tuple[int, list[int], list[str]]:
    """Opens the page; returns its number of plotly figures, the drawn-element count of each, and every
    console error or uncaught exception."""
    errors: list[str] = []
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"uncaught: {exc}"))
    page.goto(page_path.as_uri(), wait_until="load")
    n_figures = page.locator("div.plotly-graph-div").count()
    # plotly draws each figure into an <svg class="main-svg"> (WebGL traces into a <canvas>) inside its div
    page.wait_for_function(
        """() => [...document.querySelectorAll('div.plotly-graph-div')].every(
                d => d.querySelector('svg.main-svg, canvas'))""",
        timeout=RENDER_TIMEOUT_MS,
    )
    drawn = page.eval_on_selector_all(
        "div.plotly-graph-div",
        """divs => divs.map(d => d.querySelectorAll(
                'svg.main-svg path, svg.main-svg rect, svg.main-svg text, canvas').length)""",
    )
    page.screenshot(path=str(screenshot), full_page=True)
    page.close()
    return n_figures, drawn, errors


@pytest.mark.parametrize("which", ["study_report", "drift_page"])
def test_page_renders_in_chromium(request, browser, tmp_path, which):
    page_path = request.getfixturevalue(which)
    n_figures, drawn, errors = render(browser, page_path, tmp_path / f"{which}.png")
    assert n_figures >= 2, f"{page_path.name} holds {n_figures} plotly figures"
    assert len(drawn) == n_figures and all(count > 10 for count in drawn), drawn
    assert errors == []
    assert (tmp_path / f"{which}.png").read_bytes()[:4] == b"\x89PNG"
