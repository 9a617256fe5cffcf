"""The main job: every stage, from data to the report, over one run directory (``voicetune run``)."""

from voicetune.layout import RunPaths
from voicetune.pipeline.config import RunConfig, load_run_config
from voicetune.pipeline.run import STAGES, report_run, run

__all__ = ["RunConfig", "RunPaths", "STAGES", "load_run_config", "report_run", "run"]
