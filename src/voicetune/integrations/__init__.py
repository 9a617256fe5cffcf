"""Integrations of the tuned voice with voice-agent frameworks (:mod:`voicetune.integrations.pipecat`)."""
