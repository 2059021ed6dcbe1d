"""Spot-then-recognise with leave-one-subject-out cross-validation, the entry point of a spotting config.

1. The spotter is trained and scored LOSO on the snippets of the long videos (`snippets.SnippetSource`)
   by the recognition machinery itself (`cv.loso.train_folds`: fold-parallel, checkpoints, resume, the
   non-finite guard); each fold scores every snippet of its held-out subject.
2. Each held-out video's micro and macro score curves become intervals (`peaks`), whose lengths are the
   median annotated lengths of the fold's *training* videos; the naive baseline (`baseline`) spots the same
   videos with its threshold chosen on the same training videos.
3. Every spotted interval is classified by the recogniser's fold for its subject (`recognise`): a
   recognition run given by `recognizer_workdir`, or trained here first (`config.recognizer`, folds of the
   spotting subjects only, in `<workdir>/recognizer`).
4. Spotting P/R/F1 pooled over all videos (overall, micro, macro), the analysis of the true positives and
   STRS (`metrics.strs`), for the spotter and the baseline (`score_videos`), into results.json
   (`fdp_jax.run_results.spotting`).
"""

from __future__ import annotations

import time

import numpy as np
from absl import logging

from fdp_jax import config_checks, data_sources, run_results, rundir
from fdp_jax.cv import loso as cv_loso
from fdp_jax.preprocess import long_video
from fdp_jax.spotting import baseline, metrics, peaks, recognise, review_page, snippets
from fdp_jax.spotting.videos import Video, load_videos


def check_spotting(config) -> None:
  """The spotting keys and a recogniser given by `recognizer_workdir`, before any work (the recogniser trained
  here is a config of the run: `fdp_jax.experiment.check_run`)."""
  spot = config.spot
  for key in ('half_window', 'stride', 'smooth', 'baseline_distance'):
    if not isinstance(spot[key], int) or spot[key] < 1:
      raise config_checks.ConfigError(f'spot.{key} must be an integer ≥ 1, got {spot[key]!r}')
  if not 0 <= spot.p <= 1:
    raise config_checks.ConfigError(f'spot.p must be in [0, 1] (threshold = mean + p·(max − mean)), got {spot.p}')
  if config.data.num_classes != len(snippets.CLASS_NAMES):
    raise config_checks.ConfigError(f'a spotting config scores {len(snippets.CLASS_NAMES)} classes '
                                    f'{snippets.CLASS_NAMES}: set data.num_classes=3')
  if not config.recognizer_workdir and 'model' not in config.recognizer:
    raise config_checks.ConfigError('no recogniser: pass --config.recognizer_workdir=RUN (a finished '
                                    'recognition run) or use a config whose `recognizer` section trains one')
  if config.recognizer_workdir:
    try:
      recognise.Recognizer(config.recognizer_workdir)   # refuses a run that cannot serve, before any work
    except recognise.RecognizerError as e:
      raise config_checks.ConfigError(str(e)) from e


def rule_of(config) -> peaks.PeakRule:
  return peaks.PeakRule(p=float(config.spot.p), min_score=float(config.spot.min_score),
                        smooth=int(config.spot.smooth))


def run_spotting(config, workdir: str) -> dict:
  """Everything a spotting config runs (validated: `fdp_jax.experiment.check_run`); writes the run directory
  and returns results.json's dict."""
  videos, info = load_videos(config.data)
  if not config.recognizer_workdir:   # its corpus too, before any work (a licensed one is never built here)
    data_sources.ensure_built(data_sources.get_builder(config.recognizer.data.builder,
                                                       config.recognizer.data.builder_config,
                                                       config.recognizer.data.data_dir))
  source = snippets.SnippetSource(videos, int(config.spot.half_window), int(config.spot.stride))
  index = source.index()
  folds, primary = cv_loso.open_run(config, workdir, index)
  logging.info('spotting: %d videos, %d snippets, %d folds', len(videos), len(index), len(folds))
  start = time.perf_counter()
  fold_results, _, history, timing = cv_loso.train_folds(config, folds, source, index, workdir, primary,
                                                             desc='spotter LOSO')
  timing['spotter_s'] = round(time.perf_counter() - start, 2)
  recognizer = _recognizer(config, workdir, [f.subject for f in folds])
  start = time.perf_counter()
  outcome = spot_folds(config, videos, folds, fold_results, recognizer)
  timing['spot_and_recognise_s'] = round(time.perf_counter() - start, 2)
  scores = score_videos(videos, outcome, recognizer)
  results = run_results.spotting(config, info, videos, folds, fold_results, outcome['fold_rules'], scores,
                                 recognizer)
  if primary:
    np.savez_compressed(rundir.path(workdir, rundir.SCORE_CURVES), **outcome['curves'])
    run_results.write(workdir, results)
    rundir.write_json(rundir.path(workdir, rundir.TIMING), timing)
    rundir.write_json(rundir.path(workdir, rundir.HISTORY),
                      {fold.subject: history[fold.subject] for fold in folds if fold.subject in history})
    review_page.write_run_page(workdir, results, videos, outcome['curves'])
  return results


def _recognizer(config, workdir: str, subjects: list[str]) -> recognise.Recognizer:
  """The recogniser run given, or one trained now on the folds of the spotting subjects it has."""
  if config.recognizer_workdir:
    return recognise.Recognizer(config.recognizer_workdir)
  rec = config.recognizer.copy_and_resolve_references()
  _, index, _ = data_sources.load_corpus(rec.data)
  own = [s for s in subjects if s in set(index.subjects)]
  # Subjects the recogniser's corpus lacks are recognised by its first fold, which never saw them either.
  rec.cv.subjects = ','.join(own) if own else sorted(set(index.subjects))[0]
  rec.progress_bar = config.progress_bar
  directory = rundir.path(workdir, rundir.RECOGNIZER_DIR)
  logging.info('training the recogniser (%s/%s) on the folds %s in %s', rec.data.builder,
               rec.data.builder_config, rec.cv.subjects, directory)
  cv_loso.run_loso(rec, directory)
  return recognise.Recognizer(directory)


def _fold_curves(result: dict, by_video: dict[str, Video]) -> dict[str, np.ndarray]:
  """{video_id: (N, 3) class probabilities per frame (NaN where no snippet was scored)} of a fold's test
  snippets, filled between snippet centres (`peaks.fill_curve`)."""
  points: dict[str, list] = {}
  for sid, probs in zip(result['sample_ids'], result['probabilities']):
    video_id, t = snippets.parse_sample_id(sid)
    points.setdefault(video_id, []).append((t, probs))
  curves = {}
  for video_id, items in points.items():
    centres = np.array([t for t, _ in items])
    probs = np.array([p for _, p in items], np.float64)
    n = len(by_video[video_id])
    curves[video_id] = np.stack([peaks.fill_curve(n, centres, probs[:, c]) for c in range(probs.shape[1])], -1)
  return curves


def spot_video(curve: np.ndarray, rule: peaks.PeakRule, lengths: dict[str, int]) -> list[tuple]:
  """[(interval, peak score)] of one video from its (N, 3) curve (none, micro, macro)."""
  found = []
  for c, kind in enumerate(snippets.CLASS_NAMES[1:], 1):
    found += peaks.spot(curve[:, c], rule, lengths[kind], kind)
  return peaks.resolve_types(found)


def spot_folds(config, videos: list[Video], folds, fold_results: dict,
               recognizer: recognise.Recognizer | None) -> dict:
  """Spotted intervals (spotter and baseline) of every held-out video, recognised (class probabilities None
  without a recogniser); their curves."""
  rule, by_video = rule_of(config), {v.video_id: v for v in videos}
  default = {'micro': int(config.spot.default_lengths.micro), 'macro': int(config.spot.default_lengths.macro)}
  d = int(config.spot.baseline_distance)
  per_video, curves, fold_rules = {}, {}, {}
  for fold in folds:
    result = fold_results[fold.subject]
    if result.get('status') != 'done':
      continue
    training = [v for v in videos if v.subject != fold.subject]
    lengths = peaks.typical_lengths([i for v in training for i in v.intervals], default)
    micro_max = int(round(1.5 * lengths['micro']))
    p_baseline = baseline.choose_p(training, d, rule.smooth, micro_max, lengths)
    fold_rules[fold.subject] = {'lengths': lengths, 'baseline_p': p_baseline, 'baseline_micro_max': micro_max}
    held_out = [v for v in videos if v.subject == fold.subject]
    fold_curves = _fold_curves(result, by_video)
    for video in held_out:
      curve = fold_curves.get(video.video_id, np.full((len(video), 3), np.nan))
      curves[video.video_id] = curve.astype(np.float32)
      spotted = spot_video(curve, rule, lengths)
      clips = [video.frames[i.onset:i.offset + 1] for i, _ in spotted]
      probabilities = recognizer.classify(video.subject, clips) if recognizer else [None] * len(spotted)
      per_video[video.video_id] = {
          'subject': video.subject,
          'spotted': [(i, s, p) for (i, s), p in zip(spotted, probabilities)],
          'baseline': baseline.spot_video(video, d, peaks.PeakRule(p=p_baseline, smooth=rule.smooth), micro_max,
                                          lengths),
      }
  return {'per_video': per_video, 'curves': curves, 'fold_rules': fold_rules}


def _truth(video: Video, recognizer: recognise.Recognizer) -> list[metrics.Interval]:
  return [metrics.Interval(i.onset, i.offset, i.type, recognizer.emotion_class(e))
          for i, e in zip(video.intervals, video.emotions)]


def score_videos(videos: list[Video], outcome: dict, recognizer: recognise.Recognizer) -> dict:
  """The spotter's and the baseline's scores over the held-out videos of `outcome` (`spot_folds`):
  'spotting' P/R/F1, the 'analysis' of the true positives and 'strs' (`metrics.strs`), the baseline's
  spotting ('baseline') and each video's entry ('videos': truth, spotted, baseline, true positives)."""
  by_video = {v.video_id: v for v in videos}
  scored = [by_video[v] for v in outcome['per_video']]
  pairs, baseline_pairs, entries = [], [], []
  for video in scored:
    found = outcome['per_video'][video.video_id]
    truth = _truth(video, recognizer)
    spotted = [metrics.Interval(i.onset, i.offset, i.type, int(np.argmax(p))) for i, _, p in found['spotted']]
    pairs.append((spotted, truth))
    baseline_pairs.append((found['baseline'], truth))
    entries.append({
        'video_id': video.video_id, 'subject': video.subject, 'num_frames': len(video),
        'frames_without_face': int((~video.face_present).sum()),
        'no_face': [[int(a), int(b)] for a, b in long_video.face_segments(~video.face_present)],
        'truth': [{'onset': t.onset, 'offset': t.offset, 'type': t.type, 'emotion': e,
                   'class': None if t.label is None else recognizer.class_names[t.label]}
                  for t, e in zip(truth, video.emotions)],
        'spotted': [{'onset': i.onset, 'offset': i.offset, 'type': i.type, 'score': round(s, 4),
                     'class': recognizer.class_names[int(np.argmax(p))],
                     'probabilities': {n: round(float(q), 4) for n, q in zip(recognizer.class_names, p)}}
                    for i, s, p in found['spotted']],
        'baseline': [{'onset': i.onset, 'offset': i.offset, 'type': i.type} for i in found['baseline']],
    })
  spotter = metrics.strs(pairs, len(recognizer.class_names))
  naive = metrics.spotting_scores(baseline_pairs)
  for entry, matched in zip(entries, spotter['spotting']['matches']):
    entry['true_positives'] = [[s, t] for s, t in matched]
  strip = lambda scores: {k: v for k, v in scores.items() if k != 'matches'}
  return {'spotting': strip(spotter['spotting']), 'analysis': spotter['analysis'], 'strs': spotter['strs'],
          'baseline': {'name': 'thresholded frame-difference energy (fdp_jax/spotting/baseline.py)',
                       'spotting': strip(naive)},
          'videos': entries}
