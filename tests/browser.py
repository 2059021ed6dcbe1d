"""Headless Chromium driven by selenium, for the review pages (`fdp_jax.spotting.review_page`).

The tests that use it skip where Chromium, its driver or selenium is missing (the README's test command needs
nothing beyond requirements.txt); FDP_JAX_REQUIRE_BROWSER=1 (as `.ci/run` sets, having installed Debian's
`chromium` and `chromium-driver`) makes that a failure."""

from __future__ import annotations

import importlib.util
import os
import shutil
import time

import pytest

CHROMIUM = ('chromium', 'chromium-browser', 'google-chrome')
# No network: nothing the page needs comes from outside, and Chromium's own background connections would
# be refused. Autoplay without a gesture, so that a test can start playback from script.
FLAGS = ('--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync', '--autoplay-policy=no-user-gesture-required',
         '--window-size=1200,900')


def start():
  """A selenium Chrome driver on a headless Chromium that records the page's console; skips (or fails under
  FDP_JAX_REQUIRE_BROWSER=1) where there is none."""
  browser = next((shutil.which(name) for name in CHROMIUM if shutil.which(name)), None)
  driver = shutil.which('chromedriver')
  missing = [what for what, found in (('chromium', browser), ('chromedriver', driver),
                                      ('selenium', importlib.util.find_spec('selenium'))) if not found]
  if missing:
    why = f"{', '.join(missing)} not installed (Debian: apt-get install chromium chromium-driver)"
    if os.environ.get('FDP_JAX_REQUIRE_BROWSER') == '1':
      pytest.fail(f'{why}, and FDP_JAX_REQUIRE_BROWSER=1 requires the browser tests')
    pytest.skip(why)
  from selenium import webdriver
  from selenium.webdriver.chrome.service import Service
  options = webdriver.ChromeOptions()
  options.binary_location = browser
  for flag in FLAGS:
    options.add_argument(flag)
  options.set_capability('goog:loggingPrefs', {'browser': 'ALL'})
  return webdriver.Chrome(service=Service(driver), options=options)


def open_page(driver, path: str, timeout: float = 20.0) -> None:
  """Opens a page from the file system (as a double-click does) and waits until its video can play."""
  driver.get('file://' + os.path.abspath(path))
  wait_for(driver, "return document.getElementById('video').readyState >= 2", timeout)


def wait_for(driver, script: str, timeout: float = 10.0):
  """Polls `script` until it returns something true; returns that, or fails with the script."""
  end = time.monotonic() + timeout
  while True:
    value = driver.execute_script(script)
    if value:
      return value
    if time.monotonic() > end:
      pytest.fail(f'timed out after {timeout} s waiting for: {script}')
    time.sleep(0.05)


def console_errors(driver) -> list[dict]:
  return [entry for entry in driver.get_log('browser') if entry['level'] == 'SEVERE']


def current_time(driver) -> float:
  return driver.execute_script("return document.getElementById('video').currentTime")


def cursor_x(driver) -> float:
  return float(driver.execute_script("return document.getElementById('cursor').getAttribute('x1')"))
