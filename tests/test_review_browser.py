"""The review page driven in headless Chromium (Debian's chromium + chromium-driver, through selenium) against a
real `trackid serve` and a real gallery: what the page shows before a merge, a split and an undo is exactly what
then changes in the store. Screenshots go to $TRACKID_SCREENSHOTS (default tests/screenshots), CI's artifacts."""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from test_service_jobs import TOKEN, Service
from trackid.identity.stores import make_store
from trackid.identity.stores.base import GalleryStore, StoreLockedError
from trackid.service.review_plans import cards

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHOTS = Path(os.environ.get("TRACKID_SCREENSHOTS", REPO / "tests" / "screenshots"))
MODEL = {"model_id": "synthetic-embedder", "model_version": "1"}


def _chromium() -> tuple[str, str]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if browser is None or driver is None:
        if os.environ.get("CI"):
            pytest.fail("chromium / chromedriver not installed (.ci/run installs Debian's chromium chromium-driver)")
        pytest.skip("chromium and chromium-driver are not installed (apt-get install chromium chromium-driver)")
    return browser, driver


@pytest.fixture
def gallery(data: Path, tmp_path: Path) -> Path:
    """Five VIPeR people with three sightings each, one of them wrongly given a sighting of another, and a
    sixth identity that is a second copy of person 0 (a merge to make)."""
    photos = sorted((data / "reid" / "viper").glob("*.png"))[:40]
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 32))
    store = make_store(tmp_path / "gallery" / "g.db", index_kind="exact")
    people = [store.create_identity(label=f"deer-{k}").id for k in range(5)] + [store.create_identity().id]
    for k in range(5):
        for j in range(3):
            vector = centres[k] + 0.3 * rng.normal(size=32)
            source = {"image": str(photos[3 * k + j]), "box": [0, 0, 48, 128]}
            store.add_sighting(vector, **MODEL, time=float(j), identity_id=people[k], source=source, quality=0.9)
    stray = centres[3] + 0.3 * rng.normal(size=32)  # person 3 filed under person 1
    store.add_sighting(stray, **MODEL, time=9.0, identity_id=people[1], source={"image": str(photos[30])})
    for j in range(2):  # person 0 again, as a new identity
        vector = centres[0] + 0.3 * rng.normal(size=32)
        store.add_sighting(vector, **MODEL, time=20.0 + j, identity_id=people[5], source={"image": str(photos[31 + j])})
    store.close()
    return tmp_path / "gallery" / "g.db"


@pytest.fixture
def page(gallery: Path, data: Path, tmp_path: Path) -> Iterator[tuple[object, Service]]:
    browser, driver_path = _chromium()
    service = Service(tmp_path / "service", [data, gallery.parent], workers=0)
    settings = yaml.safe_load(service.config.read_text()) | {"gallery": str(gallery)}
    service.config.write_text(yaml.safe_dump(settings))
    service.start()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path), options=options)
    try:
        yield driver, service
    finally:
        driver.quit()
        service.stop()


def _shot(driver: object, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"review-{name}.png"))  # type: ignore[attr-defined]


def _sign_in(driver: object, service: Service) -> None:
    driver.get(f"{service.url}/review")  # type: ignore[attr-defined]
    assert "sign in" in driver.title  # type: ignore[attr-defined]
    driver.find_element(By.ID, "token").send_keys(TOKEN)  # type: ignore[attr-defined]
    _reloaded(driver, driver.find_element(By.ID, "sign-in").click)  # type: ignore[attr-defined]
    WebDriverWait(driver, 20).until(ec.presence_of_element_located((By.ID, "identities")))


def _shown_plan(driver: object) -> str:
    WebDriverWait(driver, 20).until(ec.visibility_of_element_located((By.ID, "plan")))
    return str(driver.find_element(By.ID, "plan-summary").text)  # type: ignore[attr-defined]


def _reloaded(driver: object, action: Callable[[], None]) -> None:
    """Do `action` and wait for the page it reloads (a mark on the old window is gone on the new one); the driver's
    errors while the page is between documents are waited out."""
    driver.execute_script("window.trackidOldPage = true")  # type: ignore[attr-defined]
    action()
    new_page = "return document.readyState === 'complete' && window.trackidOldPage === undefined"
    WebDriverWait(driver, 30, ignored_exceptions=[WebDriverException]).until(lambda d: d.execute_script(new_page))


def _apply(driver: object) -> str:
    """Apply what is shown; the page reloads with the result."""
    _reloaded(driver, driver.find_element(By.ID, "apply").click)  # type: ignore[attr-defined]
    WebDriverWait(driver, 20).until(ec.text_to_be_present_in_element((By.ID, "message"), "Applied"))
    _images_loaded(driver)
    return str(driver.find_element(By.ID, "message").text)  # type: ignore[attr-defined]


def _images_loaded(driver: object) -> None:
    script = "return Array.from(document.images).every(i => i.complete && i.naturalWidth > 0)"
    WebDriverWait(driver, 20).until(lambda d: d.execute_script(script))


def _ids(text: str) -> list[int]:
    return [int(v) for v in re.search(r"\[([0-9, ]+)\]", text).group(1).split(",")]  # type: ignore[union-attr]


def _open(gallery: Path) -> GalleryStore:
    """The gallery, once the service's request in flight (a crop, a plan) has let go of it."""
    deadline = time.monotonic() + 20
    while True:
        try:
            return make_store(gallery, create=False)
        except StoreLockedError:
            assert time.monotonic() < deadline, "the service kept the gallery open"
            time.sleep(0.05)


def _owners(gallery: Path) -> dict[int, list[int]]:
    store = _open(gallery)
    try:
        return {i.id: sorted(s.id for s in store.sightings(i.id)) for i in store.identities()}
    finally:
        store.close()


def test_merge_split_and_undo_change_the_store_exactly_as_shown(page: tuple[object, Service], gallery: Path) -> None:
    driver, service = page
    before = _owners(gallery)
    store = _open(gallery)
    expected_order = [c.identity.id for c in cards(store)]
    store.close()
    _sign_in(driver, service)
    _images_loaded(driver)  # every sighting's crop, cut from its photo
    shown = [int(e.get_attribute("data-id")) for e in driver.find_elements(By.CSS_SELECTOR, ".identity")]  # type: ignore[attr-defined]
    assert sorted(shown) == sorted(before) and shown == expected_order  # most uncertain first
    _shot(driver, "1-list")

    # the slider hides candidates below it
    slider = driver.find_element(By.ID, "min-similarity")  # type: ignore[attr-defined]
    driver.execute_script("arguments[0].value = 0.99; arguments[0].dispatchEvent(new Event('input'))", slider)  # type: ignore[attr-defined]
    visible = [c for c in driver.find_elements(By.CSS_SELECTOR, ".candidate") if c.is_displayed()]  # type: ignore[attr-defined]
    assert all(float(c.get_attribute("data-similarity")) >= 0.99 for c in visible)
    driver.execute_script("arguments[0].value = 0; arguments[0].dispatchEvent(new Event('input'))", slider)  # type: ignore[attr-defined]

    # merge identity 6 (person 0 again) into identity 1, with the checkboxes and the m key
    for identity in (1, 6):
        driver.find_element(By.CSS_SELECTOR, f".identity[data-id='{identity}'] .pick-identity").click()  # type: ignore[attr-defined]
    driver.find_element(By.TAG_NAME, "body").send_keys("m")  # type: ignore[attr-defined]
    summary = _shown_plan(driver)
    _shot(driver, "2-merge-shown")
    assert summary.startswith("Merge identity 6 into identity 1 (deer-0)") and _ids(summary) == before[6]
    assert _owners(gallery) == before  # nothing changed while it was only shown
    _apply(driver)
    after_merge = _owners(gallery)
    assert 6 not in after_merge and after_merge[1] == sorted(before[1] + before[6])
    assert {k: v for k, v in after_merge.items() if k != 1} == {k: v for k, v in before.items() if k not in (1, 6)}
    _shot(driver, "3-merged")

    # split the stray sighting off identity 2 with the button
    stray = max(before[2])
    driver.find_element(By.CSS_SELECTOR, f".sighting[data-id='{stray}'] .pick-sighting").click()  # type: ignore[attr-defined]
    driver.find_element(By.ID, "split").click()  # type: ignore[attr-defined]
    summary = _shown_plan(driver)
    assert summary.startswith("Split 1 sighting(s)") and _ids(summary) == [stray]
    _apply(driver)
    after_split = _owners(gallery)
    new = sorted(set(after_split) - set(after_merge))
    assert len(new) == 1 and after_split[new[0]] == [stray] and after_split[2] == sorted(set(before[2]) - {stray})
    _shot(driver, "4-split")

    # undo (the u key) puts the split back, exactly as it says
    driver.find_element(By.TAG_NAME, "body").send_keys("u")  # type: ignore[attr-defined]
    summary = _shown_plan(driver)
    assert summary.startswith("Undo correction") and _ids(summary) == [stray]
    _shot(driver, "5-undo-shown")
    _apply(driver)
    assert _owners(gallery) == after_merge
    # Esc cancels a shown plan and changes nothing
    driver.find_element(By.TAG_NAME, "body").send_keys("u")  # type: ignore[attr-defined]
    _shown_plan(driver)
    driver.find_element(By.TAG_NAME, "body").send_keys("\ue00c")  # type: ignore[attr-defined]  # Escape
    assert not driver.find_element(By.ID, "plan").is_displayed() and _owners(gallery) == after_merge  # type: ignore[attr-defined]
    _shot(driver, "6-after-undo")


def test_a_plan_shown_before_the_gallery_changed_is_refused(page: tuple[object, Service], gallery: Path) -> None:
    driver, service = page
    _sign_in(driver, service)
    before = _owners(gallery)
    for identity in (1, 6):
        driver.find_element(By.CSS_SELECTOR, f".identity[data-id='{identity}'] .pick-identity").click()  # type: ignore[attr-defined]
    driver.find_element(By.ID, "merge").click()  # type: ignore[attr-defined]
    _shown_plan(driver)
    store = _open(gallery)  # meanwhile, someone adds a sighting to identity 6
    store.add_sighting(np.ones(32), **MODEL, time=50.0, identity_id=6)
    store.close()
    changed = _owners(gallery)
    driver.find_element(By.ID, "apply").click()  # type: ignore[attr-defined]
    WebDriverWait(driver, 20).until(ec.text_to_be_present_in_element((By.ID, "message"), "changed since"))
    assert _owners(gallery) == changed and len(changed[6]) == len(before[6]) + 1  # nothing merged
    _shot(driver, "7-refused")


def test_the_page_needs_a_sign_in(page: tuple[object, Service]) -> None:
    driver, service = page
    driver.get(f"{service.url}/review")  # type: ignore[attr-defined]
    assert "sign in" in driver.title  # type: ignore[attr-defined]
    driver.find_element(By.ID, "token").send_keys("not-the-token")  # type: ignore[attr-defined]
    _reloaded(driver, driver.find_element(By.ID, "sign-in").click)  # type: ignore[attr-defined]
    assert "not accepted" in driver.page_source  # type: ignore[attr-defined]
