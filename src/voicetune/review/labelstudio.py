"""Label Studio interop: review a set in a team's existing Label Studio instead of voicetune's own app.

:func:`export_label_studio` writes what a Label Studio project needs (``tasks.json``, ``labeling_config.xml``,
the audio as ``audio/<sha>.wav`` and a ``README.txt`` with the setup steps); :func:`import_label_studio`
reads the project's standard JSON export back into the review database as ordinary votes (source
``label-studio``), so the agreement statistics, the votes table and the judge comparison treat them like
votes cast in the app.

Formats, as checked against Label Studio's documentation and source (labelstud.io/tags, /guide/task_format,
``label_studio/tasks/validation.py``, ``data_export/serializers.py``, ``io_storages/localfiles``):

- A task is ``{"data": {...}}``; every ``$key`` an object tag (``<Text>``, ``<Audio>``) names must be in
  ``data``, or Label Studio refuses the import. So a set without audio gets a config without ``<Audio>``.
- The JSON export is a list of tasks, each with its ``data`` and ``annotations``; an annotation has ``id``,
  ``completed_by`` (the user's id, or ``{"id", "email", "first_name", "last_name"}`` depending on the
  version), ``result`` (``{"from_name", "to_name", "type": "choices", "value": {"choices": [...]}}``, and
  ``"type": "textarea"`` with ``"value": {"text": [...]}``), ``was_cancelled`` (the annotator skipped),
  ``lead_time`` (seconds) and ``created_at`` / ``updated_at`` (ISO 8601).
- Local audio is served by ``/data/local-files/?d=PATH``, ``PATH`` relative to
  ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT``, only with ``LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true`` and
  only for files inside the path of a "Local files" source storage of the project.

Blind review holds as in the app: each task shows the pair in a random (seeded) order, recorded in
``data.order`` (``ab``: response 1 is the pair's ``a``; ``ba``: response 1 is ``b``); no system name is in a
task. The import maps each verdict back through that order.
"""

from __future__ import annotations

import mimetypes
import random
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from voicetune.errors import VoicetuneError
from voicetune.records import (
    QUALITIES,
    atomic_write_bytes,
    atomic_write_text,
    dumps,
    ensure_dir,
    parse_json,
    read_text_file,
)
from voicetune.review.store import ReviewStore, canonical

#: The ``source`` of every vote imported from Label Studio, and the prefix of its event ids.
SOURCE = "label-studio"
#: Label Studio's URL for a file under its local-files document root.
LOCAL_FILES_PREFIX = "/data/local-files/?d="
VERDICTS = ("1", "2", "tie")
ORDERS = ("ab", "ba")
SPEAKERS = {"user": "Caller", "agent": "Agent"}


# export ----------------------------------------------------------------------------------------------------


def conversation_text(history: list[dict]) -> str:
    """The conversation so far as one string, a line per message: ``Caller: ...`` / ``Agent: ...``."""
    lines = [
        f"{SPEAKERS.get(str(m.get('role')), str(m.get('role')).title())}: {' '.join(str(m.get('text', '')).split())}"
        for m in history
    ]
    return "\n".join(lines) if lines else "(no earlier conversation: this is the agent's first turn)"


def labeling_config(with_audio: bool) -> str:
    """The project's labeling interface (Label Studio XML).

    The conversation (``<Text name="conversation">``), then responses 1 and 2: two ``<Audio>`` players when the
    set has audio (the text is not shown: a listening test, like the app's listen mode), else the two texts.
    Then a required ``<Choices name="verdict">`` (``1``, ``2``, ``tie``), one optional ``<Choices>`` per
    quality of :data:`voicetune.records.QUALITIES` with the same three choices, and an optional
    ``<TextArea name="comment">``.
    """

    def choices(name: str, required: bool, indent: str) -> str:
        extra = ' required="true" requiredMessage="Choose 1, 2 or tie"' if required else ""
        options = "".join(f'<Choice value="{value}"/>' for value in VERDICTS)
        return (
            f'{indent}<Choices name="{name}" toName="conversation" choice="single-radio" '
            f'showInline="true"{extra}>{options}</Choices>'
        )

    if with_audio:
        responses = [
            '  <Header value="Response 1" size="5"/>',
            '  <Audio name="audio1" value="$audio1"/>',
            '  <Header value="Response 2" size="5"/>',
            '  <Audio name="audio2" value="$audio2"/>',
        ]
    else:
        responses = [
            '  <Header value="Response 1" size="5"/>',
            '  <Text name="text1" value="$text1"/>',
            '  <Header value="Response 2" size="5"/>',
            '  <Text name="text2" value="$text2"/>',
        ]
    criteria = []
    for quality in QUALITIES:
        criteria += [f'    <Header value="{quality.replace("_", " ")}" size="6"/>', choices(quality, False, "    ")]
    return "\n".join(
        [
            "<View>",
            "  <Style>.htx-text { white-space: pre-wrap; }</Style>",
            '  <Header value="The call so far" size="5"/>',
            '  <Text name="conversation" value="$conversation"/>',
            *responses,
            '  <Header value="Which response is better? (required)" size="5"/>',
            choices("verdict", True, "  "),
            "  <View>",
            '    <Header value="Per quality, which is better? (optional)" size="6"/>',
            *criteria,
            "  </View>",
            '  <Header value="Comment (optional)" size="6"/>',
            '  <TextArea name="comment" toName="conversation" rows="2" editable="true" maxSubmissions="1" '
            'placeholder="Why? (optional)"/>',
            "</View>",
            "",
        ]
    )


def _readme(out_dir: Path, with_audio: bool, tasks: int, audio_url_prefix: str) -> str:
    root = out_dir.parent
    lines = [
        "A voicetune review set, exported for Label Studio",
        "=================================================",
        "",
        f"{tasks} tasks, one per pair. Each shows the call so far and the two responses in a random order",
        "(data.order: 'ab' = response 1 is system a); the verdict is 1, 2 or tie. Import the project's JSON",
        "export back with voicetune.review.labelstudio.import_label_studio (it maps 1/2 back through the order).",
        "",
        "Set up the project:",
        "",
    ]
    step = 1
    local_files = with_audio and audio_url_prefix == LOCAL_FILES_PREFIX
    if with_audio and not local_files:
        lines += [
            f"{step}. Serve the folder {root} with a web server so that the tasks' audio URLs,",
            f"   {audio_url_prefix}{out_dir.name}/audio/<sha>.wav, reach the files in {out_dir / 'audio'}",
            "   (the server must allow Label Studio's origin to fetch them: CORS).",
            "",
        ]
        step += 1
    if local_files:
        lines += [
            f"{step}. Start Label Studio so that it serves these audio files as local files:",
            "",
            "       LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true \\",
            f"       LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT={root} \\",
            "       label-studio start",
            "",
            f"   The tasks' audio URLs are {audio_url_prefix}{out_dir.name}/audio/<sha>.wav: the path after the",
            "   prefix is relative to the document root, which must therefore be the folder that holds "
            f"{out_dir.name}/",
            "   (move the two together, or export again with the folder where it will be served).",
            "",
        ]
        step += 1
    lines += [
        f"{step}. Create a project; in Settings > Labeling Interface > Code, paste labeling_config.xml and save.",
        "",
    ]
    step += 1
    if local_files:
        lines += [
            f"{step}. In Settings > Cloud Storage > Add Source Storage, choose Local files with the absolute path",
            f"   {out_dir / 'audio'}",
            "   and save it WITHOUT syncing (a sync would add one task per WAV file). Label Studio serves a local",
            "   file only from inside a Local files storage of the project.",
            "",
        ]
        step += 1
    lines += [
        f"{step}. Import tasks.json (Data Import / Upload Files).",
        "",
        f"{step + 1}. For several reviewers per pair, raise the project's annotations per task (maximum_annotations).",
        "",
        "When the reviewers are done: Export > JSON (not JSON-MIN or CSV), then import that file with",
        "import_label_studio(store, 'export.json'). Re-importing the same export stores nothing twice.",
        "",
    ]
    if not with_audio:
        lines += [
            "This set has no audio (it was made with the 'browser' speech engine), so the labeling config is",
            "text-only: it shows the two responses as text and needs no local file serving or storage.",
            "",
        ]
    else:
        lines += [
            "The responses' text is in each task's data (text1, text2) but not on the labeling page: reviewers",
            "judge what they hear, as in the review app's listen mode.",
            "",
        ]
        if local_files:
            lines += [
                "To serve the audio from another web server instead, export again with audio_url_prefix set to the",
                "URL of the folder that holds this one (ending in /).",
                "",
            ]
    return "\n".join(lines)


def _extension(mime: str) -> str:
    if mime in ("audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave"):
        return ".wav"
    return mimetypes.guess_extension(mime) or ".wav"


def export_label_studio(
    store: ReviewStore, out_dir: str | Path, *, audio_url_prefix: str = LOCAL_FILES_PREFIX, seed: int = 0
) -> dict:
    """Write a Label Studio project for the review set into ``out_dir``.

    Why: teams that already run Label Studio can review there (their users, their queue, their QA) and bring
    the verdicts back with :func:`import_label_studio`.

    Writes ``tasks.json`` (one task per pair, in a seeded random order), ``labeling_config.xml`` (see
    :func:`labeling_config`), each response's audio once as ``audio/<sha>.wav`` and ``README.txt`` (the setup
    steps). A task's ``data``: ``pair_id``, ``conversation`` (``"Caller: ...\\nAgent: ..."``), ``text1`` and
    ``text2``, ``order`` (``ab`` or ``ba``, drawn per task with ``seed``: response 1 is ``a`` or ``b``) and,
    when the set has audio, ``audio1`` / ``audio2``: ``audio_url_prefix + f"{out_dir.name}/audio/{sha}.wav"``,
    a path relative to Label Studio's local-files document root, which is then ``out_dir``'s parent (the
    default prefix is Label Studio's local-files URL). A set without audio (engine ``browser``), or where any
    pair lacks audio, is exported text-only: no ``<Audio>`` in the config and no audio URLs in the tasks.

    Every file is written through a temporary file and a rename. Returns ``{"tasks": n, "audio_files": n,
    "out_dir": str}``.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise VoicetuneError(f"{out_dir}: is a file, expected a folder to export the Label Studio project into")
    ensure_dir(out_dir)
    out_dir = out_dir.resolve()  # so that "." or "export/" still gives the folder's real name in the URLs
    pairs = store.pairs()
    if not pairs:
        raise VoicetuneError(f"{store.path}: the review set has no pairs to export")
    with_audio = all(pair["audio_a"] and pair["audio_b"] for pair in pairs)
    rng = random.Random(seed)
    files: dict[str, str] = {}  # sha -> path relative to out_dir
    if with_audio:
        ensure_dir(out_dir / "audio")
        for sha in sorted({pair[key] for pair in pairs for key in ("audio_a", "audio_b")}):
            found = store.audio(sha)
            if found is None:
                raise VoicetuneError(f"{store.path}: audio {sha} of a pair is missing from the database")
            mime, audio = found
            relative = f"audio/{sha}{_extension(mime)}"
            target = out_dir / relative
            if not (target.is_file() and target.stat().st_size == len(audio) and target.read_bytes() == audio):
                atomic_write_bytes(target, audio)
            files[sha] = relative
    tasks = []
    for pair in pairs:
        order = "ba" if rng.random() < 0.5 else "ab"
        first, second = ("b", "a") if order == "ba" else ("a", "b")
        data: dict[str, Any] = {
            "pair_id": pair["id"],
            "conversation": conversation_text(pair["history"]),
            "text1": pair[f"response_{first}"],
            "text2": pair[f"response_{second}"],
            "order": order,
        }
        if with_audio:
            for slot, side in (("audio1", first), ("audio2", second)):
                data[slot] = audio_url_prefix + quote(f"{out_dir.name}/{files[pair[f'audio_{side}']]}", safe="/")
        tasks.append({"data": data})
    rng.shuffle(tasks)  # the queue's order: not the pair ids' (which may group a domain or a system)
    atomic_write_text(out_dir / "labeling_config.xml", labeling_config(with_audio))
    atomic_write_text(out_dir / "tasks.json", dumps(tasks, indent=1) + "\n")
    atomic_write_text(out_dir / "README.txt", _readme(out_dir, with_audio, len(tasks), audio_url_prefix))
    return {"tasks": len(tasks), "audio_files": len(files), "out_dir": str(out_dir)}


# import ----------------------------------------------------------------------------------------------------


def _parse_time(value: Any, where: str, field: str) -> float | None:
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise VoicetuneError(f"{where}: {field} {value!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)  # Label Studio writes UTC
    return moment.timestamp()


def _reviewer(completed_by: Any, reviewer_from: str, where: str) -> tuple[str, str]:
    """(reviewer name, the Label Studio user it stands for) from an annotation's ``completed_by``."""
    if isinstance(completed_by, bool):
        completed_by = None
    if isinstance(completed_by, int) or (isinstance(completed_by, str) and completed_by.isdigit()):
        return f"ls-user-{completed_by}", f"id {completed_by}"
    if isinstance(completed_by, dict):
        user_id, email = completed_by.get("id"), completed_by.get("email")
        local = email.split("@", 1)[0].strip() if isinstance(email, str) else ""
        if reviewer_from == "email" and local:
            return local, f"email {email}"
        if (isinstance(user_id, int) and not isinstance(user_id, bool)) or (
            isinstance(user_id, str) and user_id.isdigit()
        ):
            return f"ls-user-{user_id}", f"id {user_id}"
    raise VoicetuneError(
        f"{where}: completed_by {completed_by!r} names no user (expected a user id, or an object with id and email)"
    )


def _choice(region: dict, where: str) -> str | None:
    chosen = (region.get("value") or {}).get("choices") if isinstance(region.get("value"), dict) else None
    if not chosen:
        return None
    if not isinstance(chosen, list) or len(chosen) != 1 or chosen[0] not in VERDICTS:
        raise VoicetuneError(
            f"{where}: '{region.get('from_name')}' is {chosen!r}, expected one of 1, 2, tie (was the labeling config "
            "changed?)"
        )
    return chosen[0]


def _as_shown(winner: str, swapped: bool) -> str:
    """The inverse of :func:`~voicetune.review.store.canonical`: what a reviewer picks on a page of order
    ``swapped`` to mean ``winner``."""
    if winner == "tie":
        return "tie"
    return ("2" if winner == "a" else "1") if swapped else ("1" if winner == "a" else "2")


def import_label_studio(store: ReviewStore, export_path: str | Path, *, reviewer_from: str = "email") -> dict:
    """Record the verdicts of a Label Studio JSON export as votes in the review set.

    Why: so that verdicts given in Label Studio count like the app's (agreement, votes table, judge
    comparison), each tagged ``source="label-studio"``.

    ``export_path`` is the project's standard "JSON" export (a list of tasks, each with ``data``, which holds
    the ``pair_id`` and ``order`` :func:`export_label_studio` wrote, and ``annotations``). Each annotation
    that is not cancelled and has a verdict becomes one vote: its reviewer (``completed_by``: a user id gives
    ``ls-user-<id>``; a user object gives its email's local part with ``reviewer_from="email"``, or
    ``ls-user-<id>`` with ``reviewer_from="id"``) is added when new, the pair is added to their queue when
    missing (in the task's order), and the verdict, per-quality choices, comment, ``lead_time`` (as seconds on
    the item) and ``created_at`` are stored; ``mode`` is ``listen`` when the task had audio, else ``read``.
    When the reviewer already has the pair in their queue in the other order (a reviewer of the app who also
    annotated in Label Studio), the choices are converted so that the canonical winner (``a`` = system a) is
    what they chose; the stored ``shown`` is then in the item's order.

    Idempotent: the vote's event id is ``label-studio:<annotation id>``, so importing the same export again
    stores nothing (counted as ``already``). An annotation edited in Label Studio since the last import (other
    verdict, choices or comment) is stored as a newer vote on the same item (``label-studio:<id>:v<n>``,
    counted as ``updated``), which replaces the earlier one.

    Cancelled (skipped) annotations and annotations without a verdict are counted in ``skipped`` (cancelled
    ones also in ``cancelled``). The whole file is checked before anything is written: a file that is not a
    Label Studio JSON export of an exported set, an unknown pair id, an order other than ab/ba, a choice other
    than 1/2/tie or a ``completed_by`` without a user raises :class:`VoicetuneError` naming the file and the
    task or annotation; two Label Studio users whose emails give the same name is an error too (use
    ``reviewer_from="id"``).

    Returns ``{"annotations": n, "imported": n, "updated": n, "already": n, "skipped": n, "cancelled": n,
    "reviewers": [names]}``.
    """
    if reviewer_from not in ("email", "id"):
        raise VoicetuneError(f"reviewer_from: {reviewer_from!r} is neither email nor id")
    path = Path(export_path)
    expected = "a Label Studio JSON export (Export > JSON)"
    text = read_text_file(path, expected)
    try:
        tasks = parse_json(text)
    except ValueError as error:
        raise VoicetuneError(f"{path}: not JSON ({error}), expected {expected}") from None
    if not isinstance(tasks, list):
        raise VoicetuneError(f"{path}: a JSON {type(tasks).__name__}, expected {expected}: a list of tasks")
    pairs = {pair["id"]: pair for pair in store.pairs()}

    planned: list[dict] = []
    annotations = skipped = cancelled = 0
    users: dict[str, str] = {}  # reviewer name -> the Label Studio user it came from
    for index, task in enumerate(tasks):
        where_task = f"{path}: task {task.get('id', f'#{index + 1}') if isinstance(task, dict) else f'#{index + 1}'}"
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict) or "annotations" not in task:
            raise VoicetuneError(
                f"{where_task}: no 'data' and 'annotations', expected {expected} (not JSON-MIN or CSV)"
            )
        data = task["data"]
        pair_id, order = data.get("pair_id"), data.get("order")
        if not isinstance(pair_id, str) or order is None:
            raise VoicetuneError(
                f"{where_task}: data has no pair_id and order: not a task of a voicetune export (export_label_studio)"
            )
        if pair_id not in pairs:
            raise VoicetuneError(f"{where_task}: pair_id {pair_id!r} is not in the review set {store.path}")
        if order not in ORDERS:
            raise VoicetuneError(f"{where_task}: data.order is {order!r}, expected ab or ba")
        if not isinstance(task["annotations"], list):
            raise VoicetuneError(f"{where_task}: 'annotations' is not a list")
        mode = "listen" if data.get("audio1") and data.get("audio2") else "read"
        for annotation in task["annotations"]:
            annotations += 1
            if not isinstance(annotation, dict) or "id" not in annotation:
                raise VoicetuneError(f"{where_task}: an annotation without an id, expected {expected}")
            where = f"{where_task} annotation {annotation['id']}"
            if annotation.get("was_cancelled"):
                skipped += 1
                cancelled += 1
                continue
            result = annotation.get("result")
            if not isinstance(result, list):
                raise VoicetuneError(f"{where}: 'result' is not a list")
            verdict, criteria, comments = None, {}, []
            for region in result:
                if not isinstance(region, dict):
                    continue
                name, kind = region.get("from_name"), region.get("type")
                if kind == "choices" and name == "verdict":
                    verdict = _choice(region, where)
                elif kind == "choices" and name in QUALITIES:
                    choice = _choice(region, where)
                    if choice:
                        criteria[name] = choice
                elif kind == "textarea" and name == "comment":
                    value = (region.get("value") or {}).get("text") if isinstance(region.get("value"), dict) else None
                    comments += [str(t) for t in (value if isinstance(value, list) else [value]) if t]
            if verdict is None:
                skipped += 1
                continue
            reviewer, user = _reviewer(annotation.get("completed_by"), reviewer_from, where)
            if users.setdefault(reviewer, user) != user:
                raise VoicetuneError(
                    f"{where}: Label Studio users {users[reviewer]} and {user} both give reviewer name {reviewer!r}; "
                    "import with reviewer_from='id'"
                )
            seconds = annotation.get("lead_time")
            planned.append(
                {
                    "where": where,
                    "annotation": str(annotation["id"]),
                    "reviewer": reviewer,
                    "pair_id": pair_id,
                    "swapped": order == "ba",
                    "mode": mode,
                    "verdict": verdict,
                    "criteria": criteria,
                    "comment": "\n".join(comments),
                    "seconds": float(seconds)
                    if isinstance(seconds, (int, float)) and not isinstance(seconds, bool)
                    else None,
                    "created_at": _parse_time(annotation.get("created_at"), where, "created_at"),
                    "updated_at": _parse_time(annotation.get("updated_at"), where, "updated_at"),
                }
            )

    stored: dict[str, list[dict]] = {}  # annotation id -> its votes, oldest first
    for event in store.events():
        if event["kind"] == "vote" and event["event_id"].startswith(f"{SOURCE}:"):
            stored.setdefault(event["event_id"][len(SOURCE) + 1 :].split(":v", 1)[0], []).append(event)
    known = set(store.reviewers())
    queues: dict[str, dict[str, Any]] = {}
    imported = updated = already = 0
    reviewers: set[str] = set()
    for vote in planned:
        reviewer, pair_id = vote["reviewer"], vote["pair_id"]
        reviewers.add(reviewer)
        winner = canonical(vote["verdict"], vote["swapped"])
        criteria = {q: canonical(v, vote["swapped"]) for q, v in vote["criteria"].items()}
        versions = stored.get(vote["annotation"], [])
        if versions:
            last = versions[-1]
            if (last["winner"], last.get("criteria") or {}, last["comment"] or "") == (
                winner,
                criteria,
                vote["comment"],
            ):
                already += 1
                continue
        if reviewer not in known:
            store.add_reviewer(reviewer)
            known.add(reviewer)
        if reviewer not in queues:
            queues[reviewer] = {item.pair_id: item for item in store.items(reviewer) if item.showing == 1}
        item = queues[reviewer].get(pair_id)
        if item is None:
            item_id = store.add_item(reviewer, pair_id, swapped=vote["swapped"])
            item = store.item(item_id)
            assert item is not None  # just added
            queues[reviewer][pair_id] = item
        swapped = item.swapped  # the item's order: the same as the task's unless the item was there before
        event_id = f"{SOURCE}:{vote['annotation']}" + (f":v{len(versions)}" if versions else "")
        new = store.record_vote(
            reviewer=reviewer,
            item_id=item.id,
            shown=_as_shown(winner, swapped),
            mode=vote["mode"],
            criteria={q: _as_shown(w, swapped) for q, w in criteria.items()},
            comment=vote["comment"],
            seconds_on_item=vote["seconds"],
            source=SOURCE,
            event_id=event_id,
            created_at=(vote["updated_at"] or vote["created_at"]) if versions else vote["created_at"],
        )
        if not new:
            already += 1
            continue
        versions.append({"winner": winner, "criteria": criteria, "comment": vote["comment"]})
        stored[vote["annotation"]] = versions
        if len(versions) > 1:
            updated += 1
        else:
            imported += 1
    return {
        "annotations": annotations,
        "imported": imported,
        "updated": updated,
        "already": already,
        "skipped": skipped,
        "cancelled": cancelled,
        "reviewers": sorted(reviewers),
    }


__all__ = [
    "LOCAL_FILES_PREFIX",
    "SOURCE",
    "conversation_text",
    "export_label_studio",
    "import_label_studio",
    "labeling_config",
]
