"""The defaults every config shares — data, train, eval and cv sections — which the recipes override
(`synthetic.py`, `corpus_recipe.py`, `released_recipe.py`, `mol_recipe.py`). Each recipe adds its model
(`fdp_sizes.py`, `mol_recipe.py`) and its loss weights, whose keys depend on the model family.

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
  return config
