"""`genvision serve` in a real browser: headless Chromium driven by Selenium clicks
"Sample" and sees a new image, uploads a photo to a task run and sees the output, draws on
the completion canvas, and sees a bad upload's one-line error on the page.

Skipped, with the reason, when Selenium, Chromium or chromedriver is absent (CI installs
them: ``apt-get install chromium chromium-driver``, ``pip install -e .[dev]``). With
``GENVISION_SCREENSHOTS=DIR`` the screenshots are also written to DIR (the docs' images
come from there: ``docs/images/serve-*.png``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from browser import chromium
from serve_client import DDPM_ID, SR_ID, VAE_ID

pytest_plugins = ["serve_runs"]  # its session fixtures: the tiny runs and the server

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed: "
                                                             "pip install selenium")
from selenium.common.exceptions import TimeoutException  # noqa: E402
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture()
def driver(tmp_path):
    exe = chromium()
    chromedriver = shutil.which("chromedriver")
    if chromedriver is None:
        pytest.skip("chromedriver not installed: apt-get install chromium-driver")
    opts = Options()
    opts.binary_location = exe
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1000", "--hide-scrollbars", "--no-first-run",
                 f"--user-data-dir={tmp_path / 'profile'}"):
        opts.add_argument(flag)
    drv = webdriver.Chrome(service=Service(chromedriver), options=opts)
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()


def wait_for(drv, condition, what: str, seconds: float = 60):
    try:
        return WebDriverWait(drv, seconds).until(condition)
    except TimeoutException:
        errors = [e.text for e in drv.find_elements(By.CLASS_NAME, "error") if e.text]
        pytest.fail(f"timed out waiting for {what}; errors on the page: {errors}")


def src(drv, element_id: str) -> str:
    return drv.find_element(By.ID, element_id).get_attribute("src") or ""


def screenshot(drv, tmp_path: Path, name: str) -> Path:
    """A full-page screenshot (the window grown to the page's height)."""
    height = drv.execute_script("return document.documentElement.scrollHeight")
    drv.set_window_size(1400, max(1000, int(height)))
    path = tmp_path / f"serve-{name}.png"
    drv.save_screenshot(str(path))
    if os.environ.get("GENVISION_SCREENSHOTS"):
        shutil.copy(path, Path(os.environ["GENVISION_SCREENSHOTS"]) / path.name)
    return path


def test_sample_upload_and_draw_in_chromium(driver, served, tmp_path):
    driver.get(served.url)
    wait_for(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready"),
             "the runs to load")
    out = f"r{VAE_ID}-sample-out"
    assert src(driver, out) == ""
    driver.find_element(By.ID, f"r{VAE_ID}-sample").click()
    wait_for(driver, lambda d: src(d, out).startswith("data:image/png"), "a sample grid")
    first = src(driver, out)
    driver.find_element(By.ID, f"r{VAE_ID}-sample").click()  # the next seeds
    wait_for(driver, lambda d: src(d, out) not in ("", first), "a new sample grid")
    img = driver.find_element(By.ID, out)
    assert driver.execute_script("return arguments[0].naturalWidth", img) > 0
    assert "seeds 16 to 31" in driver.find_element(By.ID, "run-0").text

    photo = tmp_path / "photo.png"
    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(photo)
    driver.find_element(By.ID, f"r{SR_ID}-apply-file").send_keys(str(photo))
    driver.find_element(By.ID, f"r{SR_ID}-apply").click()
    wait_for(driver, lambda d: src(d, f"r{SR_ID}-apply-out").startswith("data:image/png"),
             "the super-resolved image")
    shown = driver.find_element(By.ID, f"r{SR_ID}-apply-out")
    assert driver.execute_script("return arguments[0].naturalWidth", shown) == 60  # x2

    canvas = driver.find_element(By.ID, f"r{DDPM_ID}-canvas")
    (ActionChains(driver).move_to_element_with_offset(canvas, -60, -80).click_and_hold()
     .move_by_offset(40, 10).move_by_offset(40, 10).release().perform())
    driver.find_element(By.ID, f"r{DDPM_ID}-complete").click()
    wait_for(driver, lambda d: src(d, f"r{DDPM_ID}-complete-out").startswith("data:image"),
             "the completions")
    driver.find_element(By.ID, f"r{DDPM_ID}-interpolate").click()
    wait_for(driver, lambda d: src(d, f"r{DDPM_ID}-interpolate-out").startswith("data:"),
             "the interpolation")
    shot = screenshot(driver, tmp_path, "page")
    with Image.open(shot) as im:
        assert len(np.unique(np.asarray(im.convert("RGB")).reshape(-1, 3), axis=0)) > 50

    text = tmp_path / "notes.png"  # not an image, whatever its name says
    text.write_text("hello")
    driver.find_element(By.ID, f"r{SR_ID}-apply-file").send_keys(str(text))
    driver.find_element(By.ID, f"r{SR_ID}-apply").click()
    error = driver.find_element(By.ID, f"r{SR_ID}-error")
    wait_for(driver, lambda d: error.text, "the error line")
    assert error.text.startswith("error: the image is not a readable image")
    assert "fix:" in error.text and "\n" not in error.text
    driver.execute_script("arguments[0].scrollIntoView()", error)
    screenshot(driver, tmp_path, "error")
