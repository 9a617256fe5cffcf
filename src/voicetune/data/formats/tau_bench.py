"""τ-bench trajectories: a JSON list of ``{"task_id", "traj": [OpenAI chat messages], "trial"?, "reward"?}``.

Works for every τ-bench domain: the domain comes from the policy's title in the system message
("# Airline Agent Policy") unless given. A conversation's id is ``tau-DOMAIN-TASK-TRIAL``; when two
trajectories share a task and trial, the later one's id gets ``-2`` (``-3``, …) so every turn id is unique
(both keep the same ``meta.task_id``, so a split keeps them together).
"""

from __future__ import annotations

import re
from pathlib import Path

from voicetune.data.conversation import domain_from_name, turns_from_events, unique_conversation_id
from voicetune.data.formats._json import parse_json, require
from voicetune.data.formats.openai_chat import chat_events
from voicetune.errors import VoicetuneError
from voicetune.records import Turn

_POLICY_TITLE = re.compile(r"#\s*([A-Za-z]+)\s+agent\s+policy", re.I)


def load(path: Path, text: str, domain: str | None) -> list[Turn]:
    data = parse_json(path, text)
    if isinstance(data, dict) and "traj" in data:
        data = [data]
    if not isinstance(data, list):
        raise VoicetuneError(
            f"{path}: expected a JSON list of trajectories ({{task_id, traj}}), got {type(data).__name__}"
        )
    turns: list[Turn] = []
    seen: set[str] = set()
    for index, item in enumerate(data):
        where = f"{path}: item {index}"
        if not isinstance(item, dict):
            raise VoicetuneError(f"{where}: expected an object, got {type(item).__name__}")
        trajectory = require(item, "traj", list, where)
        task_id = item.get("task_id", index)
        trial = item.get("trial", 0)
        events = chat_events(trajectory, where)
        system = next((e.text for e in events if e.role == "system"), "")
        title = _POLICY_TITLE.search(system)
        item_domain = domain or (title.group(1).lower() if title else None) or domain_from_name(path) or "general"
        meta = {"source": "tau-bench", "task_id": f"{item_domain}-{task_id}", "trial": trial}
        if "reward" in item:
            meta["reward"] = item["reward"]
        conversation_id = unique_conversation_id(f"tau-{item_domain}-{task_id}-{trial}", seen)
        turns += turns_from_events(conversation_id, events, domain=item_domain, meta=meta)
    return turns
