"""Every default of a config, in one place: the sections every config shares — data, train, eval and cv —
which the recipes override (`synthetic.py`, `corpus_recipe.py`, `released_recipe.py`, `mol_recipe.py`,
`spot_recipe.py`), and the neutral model and loss keys of each model family (`model_defaults`,
`loss_defaults`, keyed by `model.name`), which the recipes build on (`fdp_sizes.py`, `mol_recipe.py`).

`complete` fills a config's absent keys with these defaults: a run directory's config.json written before a
key existed (`fdp_jax.rundir.load_config`) reads, and compares, as a config with that key at its neutral value.

Not a config to launch by itself: it has no model.
"""

import ml_collections


def base_config(builder: str, builder_config: str, num_classes: int) -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.progress_bar = True
  # Where the recipe's settings were chosen, copied into results.json and report.md ('' = not stated).
  config.settings_chosen_on = ''

  data = config.data = ml_collections.ConfigDict()
  data.builder = builder                # a folder datasets/<builder>/
  data.builder_config = builder_config
  data.data_dir = ''                    # '' = $TFDS_DATA_DIR or ~/tensorflow_datasets
  data.split = 'train'
  data.num_classes = num_classes
  data.image_size = 64                  # side of the frames the model sees (after any crop)
  data.num_frames = 8                   # T frames sampled per clip
  data.window = 'onset_offset'          # or 'whole': the frames sampled from
  data.frame_sampling = 'segments'      # T equal segments; or 'released': i·(n // T) (+ a random offset)
  # A clip window shorter than data.num_frames stops the run before any work unless this is True (its
  # frames are then repeated, see input_pipeline.sample_frame_indices).
  data.allow_short_clips = False
  data.temporal_jitter = True           # training: a random frame of each segment (or offset)
  data.crop_scale = 1.0                 # crop side / stored side; random in training, centred in evaluation
  data.horizontal_flip = False
  # 'none': the frames as they are (the paper's and the release's input); 'clip_mean' or 'first': minus
  # that reference frame of the same clip, × reference_gain (input_pipeline.subtract_reference).
  data.frame_reference = 'none'
  data.reference_gain = 1.0
  # 'affine': each sampled frame registered to its clip's mean frame (preprocess/stabilise.py), which undoes
  # per-frame alignment jitter; MOL's flow and landmark targets follow the frames. 'none': as stored.
  data.stabilise = 'none'
  # 'standard': (x/255 − 0.5)/0.5; 'released_per_split': then each split shifted by its mean and divided by
  # its max, as the release does (the test split by its own statistics: transductive).
  data.normalization = 'standard'
  data.targets = 'mer'                  # 'mol': also the flow and landmark targets MOL trains on
  data.num_threads = 2                  # grain reader threads
  # 'auto': on TPU/GPU, a corpus whose sampling windows take at most `device_share` of one device's memory
  # is placed there once and every batch is sampled, augmented and normalised inside the jitted step
  # (fdp_jax/device_input.py; FDP's targets only); on CPU the host pipeline. Or 'always' | 'never'.
  data.on_device = 'auto'
  data.device_share = 0.25

  train = config.train = ml_collections.ConfigDict()
  train.batch_size = 36
  train.num_steps = 500                 # per fold
  train.optimizer = 'adamw'             # or 'adam_l2': L2 added to the gradient, as torch.optim.Adam
  train.learning_rate = 1e-4
  train.schedule = 'warmup_cosine'      # or 'constant'
  train.warmup_steps = 25
  train.end_lr_factor = 0.02            # the cosine ends at this fraction of the learning rate
  train.weight_decay = 1e-3
  train.grad_clip_norm = 1.0            # 0: no clipping
  train.ema_decay = 0.0                 # > 0: evaluate a moving average of the parameters (train.update_ema)
  train.log_every_steps = 20            # also where the non-finite guard checks each fold
  # 'auto': bfloat16 activations and matrix work on TPU/GPU (parameters, optimiser state, BatchNorm
  # statistics and losses stay float32), float32 on CPU; or 'float32' | 'bfloat16'.
  train.compute_dtype = 'auto'
  # 'auto': every conv in XLA's convolution on TPU/GPU, the measured product-or-convolution routing on CPU
  # (fdp_jax/models/layers.py); or 'cpu' | 'xla', for experiments.
  train.conv_routing = 'auto'

  config.eval = ml_collections.ConfigDict()
  config.eval.batch_size = 36
  # Temporal views per test clip, probabilities averaged (1: the sampling rule's own frames).
  config.eval.num_views = 1

  cv = config.cv = ml_collections.ConfigDict()
  cv.protocol = 'loso'
  # How settings are chosen: 'none' (the config as it is) or 'inner_loso': per outer fold, the config and each
  # candidate of selection_grid ('key=value;key=value|key=value') scored by LOSO over its training subjects
  # only; the best is retrained and scored once on the held-out subject (fdp_jax/cv/selection.py).
  cv.selection = 'none'
  cv.selection_grid = ''
  cv.subjects = 'all'                   # or comma-separated held-out subjects for a partial run: 's00,s03'
  # Folds trained at once (fdp_jax.cv.parallel): stacked, vmapped, sharded over the `fold` mesh axis.
  # 0 = as many as fit (one per device on CPU; on GPU/TPU as many as 80 % of device memory holds);
  # 1 = one after another.
  cv.parallel_folds = 0
  cv.data_parallel = 1                  # devices along the `data` mesh axis: each fold's batch split over them
  # Every fold is checkpointed this often and at its end (a multiple of train.log_every_steps): a killed run
  # rerun with the same command continues from there (fdp_jax.cv.checkpoints). A fold's state at the
  # released widths (parameters + Adam) is ≈ 1 GB on disk: those recipes checkpoint less often.
  cv.checkpoint_every_steps = 100
  cv.best_test_every_steps = 0          # > 0: also record the released best-test-step selection (OPTIMISTIC)
  # Multi-host: jax.distributed.initialize() before anything else. Leave the three below empty on TPU pods
  # and SLURM/Kubernetes (they come from the environment); set them for a hand-started job.
  cv.distributed = False
  cv.coordinator_address = ''           # 'host:port' of process 0
  cv.num_processes = 1
  cv.process_id = 0
  cv.cpu_collectives = False            # True: gloo for cross-process collectives off the CPU platform too
  # 'recognition' (fdp_jax/cv/loso.py) or 'spotting' (fdp_jax/spotting/loso.py, configs/spot_recipe.py).
  config.task = 'recognition'
  # True: the run is followed by the same run on the MER loss alone (fdp_jax.mol_evidence, MOL's configs).
  config.compare_ablation = False
  return config


def model_defaults(name: str) -> ml_collections.ConfigDict:
  """The neutral `config.model` of the family `name` ('fdp' | 'mol' | 'spotter'): a key that became an option
  after runs were written is here at the value those runs had (MOL's: the release's wiring). The sizes are
  the recipes' (`fdp_sizes.py`, `spot_recipe.py`)."""
  m = ml_collections.ConfigDict()
  m.name = name
  if name == 'fdp':
    m.variant = 'paper'           # the paper design (fdp_jax.models.fdp); 'released': fdp_sizes.released_fdp_model
  elif name == 'mol':
    # MOL as released.
    m.dropout = 0.5
    m.knn = 4
    m.width = 1.0                  # every channel count × width (models/mol.py)
    m.landmark_units = 'pixels'    # the landmark head's outputs: 'pixels' (released) | 'centred'
    m.pair_batch_norm = True       # BatchNorm statistics per frame / per pair, as the release loops
    m.correlation_patch = 21       # FlowNetC's displacements per axis; 0: those that can land on the map
    # What the MER head reads (models/mol.py): as released, the F5C maps as they are ('none'), no BatchNorm
    # before it, and F5C blocks whose residual branches add at full strength from the start.
    m.mer_reference = 'none'       # 'clip_mean': the maps minus their mean over the clip
    m.mer_norm = False             # True: BatchNorm over those maps before the 3D-CNN head
    m.f5c_layer_scale = False      # True: each F5C branch × a learned per-channel scale that starts at 0
  elif name != 'spotter':
    raise ValueError(f"unknown model name {name!r}: use 'fdp', 'mol' or 'spotter'")
  return m


def loss_defaults(name: str) -> ml_collections.ConfigDict:
  """The neutral `config.loss` of the family `name`: the MER cross-entropy at weight 1, unbalanced, and MOL's
  released auxiliary weights (CE + 10 · flow MSE + 0.5 · landmark L1/IPD). FDP's dynamic-image and ranking
  weights are the recipes' (`synthetic.py`, `corpus_recipe.py`, `released_recipe.py`)."""
  loss = ml_collections.ConfigDict()
  loss.mer = 1.0
  if name == 'mol':
    loss.flow = 10.0
    loss.landmarks = 0.5
  elif name not in ('fdp', 'spotter'):
    raise ValueError(f"unknown model name {name!r}: use 'fdp', 'mol' or 'spotter'")
  loss.class_balance = False         # True: cross-entropy weighted by the inverse class frequency of a fold
  return loss


def complete(config) -> ml_collections.ConfigDict:
  """A copy of `config` (a ConfigDict or the dict of a config.json) with every key it lacks at its default:
  `base_config`'s sections, its model family's `model_defaults` and `loss_defaults`, and, for a spotting
  config, its recogniser's (`config.recognizer`, when it has a model). Keys it has keep their values and
  their order; an absent key is added at the end of its section."""
  if isinstance(config, ml_collections.ConfigDict):
    config = config.copy_and_resolve_references()
    config.unlock()
  else:
    config = ml_collections.ConfigDict(config)
  full = base_config(config.data.builder, config.data.builder_config, config.data.num_classes)
  if 'model' in config:
    full.model = model_defaults(config.model.name)
    full.loss = loss_defaults(config.model.name)
  _fill(config, full)
  if 'recognizer' in config and 'model' in config.recognizer:
    config.recognizer = complete(config.recognizer)
  return config


def _fill(config: ml_collections.ConfigDict, defaults: ml_collections.ConfigDict) -> None:
  for key, value in defaults.items():
    if key not in config:
      config[key] = value
    elif isinstance(value, ml_collections.ConfigDict) and isinstance(config[key], ml_collections.ConfigDict):
      _fill(config[key], value)
