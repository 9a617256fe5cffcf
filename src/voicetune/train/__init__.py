"""Post-training: the config and the recipe (targets → SFT → sample → score → DPO)."""

from voicetune.train.config import TrainConfig, load_config
from voicetune.train.recipe import preference_pairs, train

__all__ = ["TrainConfig", "load_config", "preference_pairs", "train"]
