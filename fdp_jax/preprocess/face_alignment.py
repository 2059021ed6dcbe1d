"""dlib face detection, 68-point landmarks and the released similarity alignment. No JAX.

The alignment rotates the image so the two eye centres (means of landmarks 36–41 and 42–47) are level,
then scales and translates so that the bounding box of five points — the eye centres, the nose tip (30)
and the mouth corners (48, 54) — enlarged `box_enlarge` times on its longer side fills the output square.
The image is warped bilinearly with a mid-grey (128) border and the landmarks go through the same matrix.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np

LANDMARK_MODEL = 'shape_predictor_68_face_landmarks.dat'
BORDER_VALUE = 128


def landmark_model_path() -> str:
  """Path of dlib's 68-point model shipped by the `face-recognition-models` package.

  Found without importing the package: its __init__ imports `pkg_resources`, which setuptools ≥ 81
  no longer provides.
  """
  spec = importlib.util.find_spec('face_recognition_models')
  if spec is None or not spec.submodule_search_locations:
    raise RuntimeError('the 68-point landmark model is missing: pip install face-recognition-models')
  path = os.path.join(list(spec.submodule_search_locations)[0], 'models', LANDMARK_MODEL)
  if not os.path.exists(path):
    raise RuntimeError(f'face-recognition-models is installed but {path} is missing: reinstall it')
  return path


class FaceLandmarker:
  """dlib's HOG frontal face detector (upsampling the image once) and 68-point shape predictor.

  The models load on first use, so instances are cheap to create and to send to worker processes.
  """

  def __init__(self, upsample: int = 1):
    self.upsample = upsample
    self._detector = None
    self._predictor = None

  def __getstate__(self):
    return {'upsample': self.upsample}

  def __setstate__(self, state):
    self.__init__(**state)

  def _load(self):
    if self._detector is None:
      import dlib
      self._detector = dlib.get_frontal_face_detector()
      self._predictor = dlib.shape_predictor(landmark_model_path())

  def detect(self, image: np.ndarray):
    """The largest face in `image` (H, W) or (H, W, 3) uint8 as a dlib.rectangle, or None."""
    self._load()
    faces = self._detector(np.ascontiguousarray(image), self.upsample)
    if len(faces) == 0:
      return None
    return max(faces, key=lambda r: r.width() * r.height())

  def landmarks(self, image: np.ndarray, face) -> np.ndarray:
    """(68, 2) float64 (x, y) pixel landmarks of the face in box `face` (a dlib.rectangle)."""
    self._load()
    shape = self._predictor(np.ascontiguousarray(image), face)
    return np.array([(p.x, p.y) for p in shape.parts()], np.float64)


def _eye_centres(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  return landmarks[36:42].mean(0), landmarks[42:48].mean(0)


def alignment_matrix(landmarks: np.ndarray, image_size: int, box_enlarge: float = 2.5) -> np.ndarray:
  """(2, 3) affine matrix mapping source pixels to the aligned `image_size`² face. landmarks: (68, 2)."""
  landmarks = np.asarray(landmarks, np.float64).reshape(68, 2)
  left, right = _eye_centres(landmarks)
  dx, dy = right - left
  length = np.hypot(dx, dy)
  if not length > 0:
    raise ValueError('degenerate landmarks: the two eye centres coincide')
  cos, sin = dx / length, dy / length
  rotation = np.array([[cos, sin], [-sin, cos]])
  points = np.stack([left, right, landmarks[30], landmarks[48], landmarks[54]]) @ rotation.T
  low, high = points.min(0), points.max(0)
  centre = (low + high) / 2
  half = 0.5 * box_enlarge * float((high - low).max())
  scale = (image_size - 1) / 2.0 / half
  matrix = np.empty((2, 3))
  matrix[:, :2] = scale * rotation
  matrix[:, 2] = scale * (half - centre)
  return matrix


def warp_face(image: np.ndarray, matrix: np.ndarray, image_size: int) -> np.ndarray:
  """`image` (H, W[, C]) uint8 warped by `matrix` (2, 3) into (image_size, image_size[, C]), bilinear."""
  import cv2
  channels = 1 if image.ndim == 2 else image.shape[2]
  return cv2.warpAffine(image, np.asarray(matrix, np.float64), (image_size, image_size),
                        flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                        borderValue=(BORDER_VALUE,) * max(channels, 3))


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
  """(N, 2) points through the (2, 3) affine `matrix`."""
  points = np.asarray(points, np.float64)
  return points @ matrix[:, :2].T + matrix[:, 2]


def align_face(image: np.ndarray, landmarks: np.ndarray, image_size: int, box_enlarge: float = 2.5
               ) -> tuple[np.ndarray, np.ndarray]:
  """(aligned image, landmarks (68, 2) in aligned pixels) for one image and its source landmarks."""
  matrix = alignment_matrix(landmarks, image_size, box_enlarge)
  return warp_face(image, matrix, image_size), transform_points(np.reshape(landmarks, (68, 2)), matrix)
