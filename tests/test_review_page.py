"""The review page (`fdp_jax.spotting.review_page`) on videos drawn here with known intervals: the video it
encodes, a page that needs no network, and in headless Chromium (`browser.py`: skipped without it) the
clicks and keys that seek, the cursor that follows playback, outcomes and the video chooser."""

import json
import os
import re

import cv2
import numpy as np
import pytest

import browser
from fdp_jax import caveats
from fdp_jax.spotting import review_page

FPS = 25.0
NAMES = ('negative', 'positive', 'surprise')


def _frames(n: int, seed: int) -> np.ndarray:
  """(n, 64, 64, 1) uint8: a bright bar sweeping across noise, so that every frame differs."""
  rng = np.random.default_rng(seed)
  frames = rng.integers(0, 60, (n, 64, 64, 1), dtype=np.uint8)
  for t in range(n):
    frames[t, :, (t * 64) // n, 0] = 255
  return frames


def _entry(video_id: str, n: int, spotted: list, truth: list, matches: list) -> dict:
  """A spotting run's results.json entry of one video."""
  def probabilities(k):
    p = np.full(len(NAMES), 0.1)
    p[k % len(NAMES)] = 0.8
    return {c: round(float(q / p.sum()), 4) for c, q in zip(NAMES, p)}
  return {'video_id': video_id, 'subject': video_id.split('/')[0], 'num_frames': n, 'no_face': [[40, 44]],
          'truth': [{'onset': a, 'offset': b, 'type': t, 'emotion': 'happy', 'class': 'positive'}
                    for a, b, t in truth],
          'spotted': [{'onset': a, 'offset': b, 'type': t, 'score': 0.5, 'class': 'x', 'probabilities': probabilities(k)}
                      for k, (a, b, t) in enumerate(spotted)],
          'baseline': [{'onset': 70, 'offset': 75, 'type': 'micro'}], 'true_positives': matches}


VIDEOS = (  # video id, frames, spotted, annotated, [spotted, annotated] matches
    ('s01/a', 90, [(10, 18, 'micro'), (30, 37, 'macro'), (60, 66, 'micro')], [(11, 18, 'micro'), (80, 86, 'macro')],
     [[0, 0]]),
    ('s02/b', 60, [(20, 29, 'macro')], [], []),
)


@pytest.fixture(scope='module')
def page(tmp_path_factory):
  """A run page over two drawn videos: (path of the page, the views it shows)."""
  folder = tmp_path_factory.mktemp('page')
  views = []
  for k, (video_id, n, spotted, truth, matches) in enumerate(VIDEOS):
    src = f'video_{k}.mp4'
    assert review_page.encode_video(iter(_frames(n, k)), str(folder / src), FPS) == n
    curve = np.full((n, 3), np.nan)
    curve[5:n - 5] = np.linspace(0, 1, n - 10)[:, None]
    views.append(review_page.run_video_view(_entry(video_id, n, spotted, truth, matches), curve, src, FPS, NAMES))
  path = str(folder / 'report.html')
  review_page.write_page(path, 'drawn </script> videos', views, judged=True)
  return path, views


def _page_data(path: str) -> dict:
  with open(path) as f:
    text = f.read()
  return json.loads(re.search(r'<script type="application/json" id="review-data">(.*?)</script>', text, re.S)[1])


def test_encoded_video_has_every_frame_at_its_time(tmp_path):
  frames = list(_frames(30, 0))
  frames[7] = None                                        # an unreadable frame is kept, black
  path = str(tmp_path / 'v.mp4')
  assert review_page.encode_video(frames, path, FPS) == 30
  capture = cv2.VideoCapture(path)
  assert capture.get(cv2.CAP_PROP_FPS) == pytest.approx(FPS)
  decoded = []
  while True:
    ok, image = capture.read()
    if not ok:
      break
    decoded.append(image)
  assert len(decoded) == 30
  assert decoded[0].shape == (256, 256, 3)                # 64 px crops enlarged 4x: at least 240 px
  assert decoded[7].max() < 20 and decoded[8].max() > 200
  big = np.zeros((1080, 1920, 3), np.uint8)
  review_page.encode_video([big, big], str(tmp_path / 'big.mp4'), FPS)
  capture = cv2.VideoCapture(str(tmp_path / 'big.mp4'))
  assert capture.read()[1].shape == (480, 854, 3)         # at most 480 px high, even width


def test_page_is_self_contained_and_carries_its_data(page):
  path, views = page
  with open(path) as f:
    text = f.read()
  assert '<link' not in text and not re.search(r'<script[^>]+src=', text)
  assert not re.search(r'(src|href)="(https?:)?//', text)
  assert text.count('</script>') == 2                      # a title holding '</script>' cannot end the data early
  data = _page_data(path)
  assert data['title'] == 'drawn </script> videos' and data['judged'] and len(data['videos']) == 2
  first = data['videos'][0]
  assert [i['outcome'] for i in first['spotted']] == ['TP', 'FP', 'FP']
  assert [i['outcome'] for i in first['truth']] == ['TP', 'FN']
  assert [i['class'] for i in first['spotted']] == ['negative', 'positive', 'surprise']
  assert first['curves']['micro'][:5] == [None] * 5 and first['curves']['micro'][5] == 0.0
  assert first == json.loads(json.dumps(views[0]))


def test_undecided_near_uniform():
  issue_example = [0.192, 0.179, 0.214, 0.212, 0.204]     # happiness..others of a synthetic run on a real face
  assert caveats.distance_from_uniform(issue_example) == pytest.approx(0.0295)
  assert caveats.decided_class(issue_example, 'abcde') == caveats.UNDECIDED
  assert caveats.decided_class([0.3, 0.175, 0.175, 0.175, 0.175], 'abcde') == 'a'     # 0.1 from uniform
  assert caveats.decided_class([0.5, 0.5, 0, 0], 'abcd') in 'ab'
  view = review_page.spotted_view({'onset': 0, 'offset': 3, 'type': 'micro', 'score': 1.0,
                                   'probabilities': dict(zip(NAMES, [0.34, 0.33, 0.33]))}, NAMES)
  assert view['class'] == caveats.UNDECIDED


def test_corpora_marked_synthetic():
  assert caveats.synthetic_corpus('synthetic_me') and caveats.synthetic_corpus('synthetic_long')
  assert not any(caveats.synthetic_corpus(c) for c in ('casme2', 'samm', 'casme3_long', 'no_such_corpus'))
  assert caveats.training_warning({'dataset': {'name': 'casme2'}}, {'dataset': {'name': 'synthetic_me'}})
  assert caveats.training_warning({'dataset': {'name': 'casme2'}}) == ''


@pytest.fixture(scope='module')
def driver():
  d = browser.start()
  yield d
  d.quit()


def test_page_in_a_browser(page, driver, tmp_path):
  path, views = page
  browser.open_page(driver, path)
  assert browser.console_errors(driver) == []
  spotted = driver.find_elements('css selector', '.interval.spotted')
  assert len(spotted) == 3 and len(driver.find_elements('css selector', '#intervals tr.row')) == 3
  assert len(driver.find_elements('css selector', '.interval.truth')) == 2
  fills = [r.get_attribute('fill') for r in spotted]
  assert fills[0] != fills[1] == fills[2]                  # a true positive, two false positives
  # Clicking an interval seeks the video to its onset, and the cursor there.
  spotted[1].click()
  browser.wait_for(driver, f"return Math.abs(document.getElementById('video').currentTime - {30 / FPS}) < 1e-3")
  assert 'frame 30/89' in driver.find_element('id', 'status').text
  x_at_onset = browser.cursor_x(driver)
  # n / p jump to the next / previous spotted interval; the arrows step one frame.
  body = driver.find_element('tag name', 'body')
  body.send_keys('n')
  assert browser.current_time(driver) == pytest.approx(60 / FPS, abs=1e-3)
  body.send_keys('p')
  body.send_keys('p')
  assert browser.current_time(driver) == pytest.approx(10 / FPS, abs=1e-3)
  from selenium.webdriver.common.keys import Keys
  body.send_keys(Keys.ARROW_RIGHT)
  assert browser.current_time(driver) == pytest.approx(11 / FPS, abs=1e-3)
  body.send_keys(Keys.ARROW_LEFT)
  body.send_keys(Keys.ARROW_LEFT)
  assert browser.current_time(driver) == pytest.approx(9 / FPS, abs=1e-3)
  # Space plays: the cursor follows.
  spotted[1].click()
  body.send_keys(Keys.SPACE)
  browser.wait_for(driver, f"return parseFloat(document.getElementById('cursor').getAttribute('x1')) > {x_at_onset + 20}")
  body.send_keys(Keys.SPACE)
  assert driver.execute_script("return document.getElementById('video').paused")
  driver.save_screenshot(str(tmp_path / 'page.png'))
  assert os.path.getsize(tmp_path / 'page.png') > 10_000
  # The chooser shows the second video: its own interval and its own file.
  from selenium.webdriver.support.ui import Select
  Select(driver.find_element('id', 'video-select')).select_by_index(1)
  browser.wait_for(driver, "return document.getElementById('video').src.endsWith('video_1.mp4') && "
                           "document.getElementById('video').readyState >= 2")
  assert len(driver.find_elements('css selector', '.interval.spotted')) == 1
  assert browser.console_errors(driver) == []
