"""Simulated calls: predict what a voice does to repeat requests, turns, call duration and outcomes, offline
(``voicetune simulate``; see :mod:`voicetune.simulate.run`)."""

from voicetune.simulate.caller import listening_load, repeat_probability
from voicetune.simulate.config import CallerModel, SimConfig, Timing
from voicetune.simulate.run import simulate

__all__ = ["CallerModel", "SimConfig", "Timing", "listening_load", "repeat_probability", "simulate"]
