"""Shipping the tuned voice: export to GGUF (``export.py``), the voice as a component (``voice.py``) and as an
HTTP service (``app.py``, ``voicetune serve``); the Pipecat processor is in :mod:`voicetune.integrations.pipecat`."""
