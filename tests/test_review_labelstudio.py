"""Label Studio interop: the exported project (tasks, labeling config, audio) and the import of its JSON
export back into the review set as votes, mapped through each task's order."""

from __future__ import annotations

import copy
import json
import shutil
import wave
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote

import pytest

from voicetune.errors import VoicetuneError
from voicetune.records import QUALITIES, Message, Pair, write_records
from voicetune.review.create import create_review_set
from voicetune.review.labelstudio import export_label_studio, import_label_studio
from voicetune.review.store import ReviewStore, canonical

PREFIX = "/data/local-files/?d="


def _pairs(n: int) -> list[Pair]:
    return [
        Pair(
            id=f"p{i:02d}",
            domain="billing" if i % 2 else "support",
            system_a="tuned",
            system_b="base",
            history=[
                Message(role="user", text=f"My bill {i} looks wrong."),
                Message(role="agent", text="Let me check."),
                Message(role="user", text="Thanks."),
            ],
            response_a=f"Your bill {i} had a late fee; I removed it.",
            response_b=f"I have looked at bill number {i} and see a fee.",
            winner="a" if i % 3 else "tie",
            criteria={"clarity": "a", "conciseness": "b"},
        )
        for i in range(n)
    ]


def _make_set(tmp_path: Path, n: int, engine: str) -> ReviewStore:
    eval_dir = tmp_path / "eval"
    eval_dir.mkdir()
    write_records(eval_dir / "pairs.jsonl", _pairs(n))
    db = tmp_path / "review.db"
    create_review_set(eval_dir, db, ["alice", "bob"], engine=engine, overlap=1, repeat_share=0)
    return ReviewStore(db)


@pytest.fixture
def audio_set(tmp_path: Path) -> ReviewStore:
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed")
    return _make_set(tmp_path, 4, "espeak")


@pytest.fixture
def text_set(tmp_path: Path) -> ReviewStore:
    return _make_set(tmp_path, 24, "browser")


def _tasks(out: Path) -> list[dict]:
    return json.loads((out / "tasks.json").read_text())


def _config_vars(config: ET.Element) -> set[str]:
    return {
        el.get("value")[1:]
        for el in config.iter()
        if el.tag in ("Text", "Audio") and el.get("value", "").startswith("$")
    }


def _check_config(config: ET.Element, tasks: list[dict]) -> None:
    """The controls voicetune needs are there, point at an object tag, and every $field is in every task."""
    objects = {el.get("name") for el in config.iter() if el.tag in ("Text", "Audio")}
    choices = {el.get("name"): el for el in config.iter("Choices")}
    assert set(choices) == {"verdict", *QUALITIES}
    for name, element in choices.items():
        assert [c.get("value") for c in element.iter("Choice")] == ["1", "2", "tie"]
        assert element.get("toName") in objects
        assert element.get("required") == ("true" if name == "verdict" else None)
    comment = [el for el in config.iter("TextArea")]
    assert [el.get("name") for el in comment] == ["comment"] and comment[0].get("toName") in objects
    assert any(el.tag == "Text" and el.get("value") == "$conversation" for el in config.iter())
    for task in tasks:  # Label Studio refuses a task without a field an object tag names
        assert _config_vars(config) <= set(task["data"])


def _annotation(ann_id, completed_by, verdict=None, criteria=None, comment=None, cancelled=False, lead_time=12.5):
    result = []
    if verdict:
        result.append(
            {
                "id": f"r{ann_id}",
                "from_name": "verdict",
                "to_name": "conversation",
                "type": "choices",
                "origin": "manual",
                "value": {"choices": [verdict]},
            }
        )
    for quality, choice in (criteria or {}).items():
        result.append(
            {
                "id": f"q{ann_id}{quality}",
                "from_name": quality,
                "to_name": "conversation",
                "type": "choices",
                "value": {"choices": [choice]},
            }
        )
    if comment:
        result.append(
            {
                "id": f"c{ann_id}",
                "from_name": "comment",
                "to_name": "conversation",
                "type": "textarea",
                "value": {"text": [comment]},
            }
        )
    return {
        "id": ann_id,
        "completed_by": completed_by,
        "result": result,
        "was_cancelled": cancelled,
        "ground_truth": False,
        "created_at": "2024-05-02T10:00:00.123456Z",
        "updated_at": "2024-05-02T10:00:01.000000Z",
        "lead_time": lead_time,
        "task": None,
    }


def _export(tasks: list[dict], annotations: dict[int, list[dict]]) -> list[dict]:
    """What Label Studio's JSON export of the imported tasks.json looks like."""
    out = []
    for index, task in enumerate(tasks):
        anns = copy.deepcopy(annotations.get(index, []))
        for ann in anns:
            ann["task"] = index + 1
        out.append(
            {
                "id": index + 1,
                "data": task["data"],
                "annotations": anns,
                "predictions": [],
                "created_at": "2024-05-01T09:00:00Z",
                "updated_at": "2024-05-02T10:00:01Z",
                "project": 3,
            }
        )
    return out


def _write(path: Path, data) -> Path:
    path.write_text(json.dumps(data))
    return path


def test_export_with_audio_writes_tasks_config_and_wavs(audio_set: ReviewStore, tmp_path: Path):
    out = tmp_path / "ls-project"
    result = export_label_studio(audio_set, out)
    tasks = _tasks(out)
    assert result == {
        "tasks": 4,
        "audio_files": len(list((out / "audio").glob("*.wav"))),
        "out_dir": str(out.resolve()),
    }
    assert result["audio_files"] == len({p[k] for p in audio_set.pairs() for k in ("audio_a", "audio_b")})
    pairs = {p["id"]: p for p in audio_set.pairs()}
    assert sorted(t["data"]["pair_id"] for t in tasks) == sorted(pairs)
    for task in tasks:
        data = task["data"]
        pair = pairs[data["pair_id"]]
        first, second = ("b", "a") if data["order"] == "ba" else ("a", "b")
        assert (data["text1"], data["text2"]) == (pair[f"response_{first}"], pair[f"response_{second}"])
        assert data["conversation"] == "Caller: My bill {} looks wrong.\nAgent: Let me check.\nCaller: Thanks.".format(
            int(pair["id"][1:])
        )
        for slot, side in (("audio1", first), ("audio2", second)):
            url = data[slot]
            assert url.startswith(PREFIX)
            relative = unquote(url[len(PREFIX) :])
            assert relative == f"{out.name}/audio/{pair[f'audio_{side}']}.wav"
            wav = out.parent / relative  # the document root is the export folder's parent
            assert wav.read_bytes() == audio_set.audio(pair[f"audio_{side}"])[1]
            with wave.open(str(wav)) as reader:
                assert reader.getnframes() > 0
        assert "system_a" not in json.dumps(data) and "tuned" not in json.dumps(data)  # blind
    config = ET.fromstring((out / "labeling_config.xml").read_text())
    assert config.tag == "View"
    assert [(el.get("name"), el.get("value")) for el in config.iter("Audio")] == [
        ("audio1", "$audio1"),
        ("audio2", "$audio2"),
    ]
    headers = [el.get("value") for el in config.iter("Header")]
    assert headers.index("Response 1") < headers.index("Response 2")
    _check_config(config, tasks)
    readme = (out / "README.txt").read_text()
    for needle in (
        "LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true",
        f"LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT={out.parent.resolve()}",
        "labeling_config.xml",
        "tasks.json",
        str(out.resolve() / "audio"),
    ):
        assert needle in readme
    assert not list(out.rglob("*.tmp"))
    # a second export is the same (seeded) and rewrites nothing it does not need to
    assert export_label_studio(audio_set, out) == result and _tasks(out) == tasks
    # audio served by another web server: the prefix is that server's URL of the export's parent folder
    web = export_label_studio(audio_set, tmp_path / "web", audio_url_prefix="https://files.example.com/review/")
    urls = [t["data"][slot] for t in _tasks(Path(web["out_dir"])) for slot in ("audio1", "audio2")]
    assert all(u.startswith("https://files.example.com/review/web/audio/") and u.endswith(".wav") for u in urls)
    assert "LOCAL_FILES" not in (tmp_path / "web" / "README.txt").read_text()


def test_export_without_audio_is_text_only_and_both_orders_occur(text_set: ReviewStore, tmp_path: Path):
    out = tmp_path / "ls"
    result = export_label_studio(text_set, out, seed=3)
    tasks = _tasks(out)
    assert result["tasks"] == 24 and result["audio_files"] == 0 and not (out / "audio").exists()
    orders = [t["data"]["order"] for t in tasks]
    assert set(orders) == {"ab", "ba"}
    assert all("audio1" not in t["data"] and "audio2" not in t["data"] for t in tasks)
    config = ET.fromstring((out / "labeling_config.xml").read_text())
    assert not list(config.iter("Audio"))
    assert {el.get("value") for el in config.iter("Text")} == {"$conversation", "$text1", "$text2"}
    _check_config(config, tasks)
    assert "text-only" in (out / "README.txt").read_text()
    # seeded: the same seed gives the same orders, another seed other ones
    assert [
        t["data"]["order"] for t in _tasks(Path(export_label_studio(text_set, tmp_path / "again", seed=3)["out_dir"]))
    ] == orders
    export_label_studio(text_set, tmp_path / "other", seed=4)
    assert sorted((t["data"]["pair_id"], t["data"]["order"]) for t in _tasks(tmp_path / "other")) != sorted(
        (t["data"]["pair_id"], t["data"]["order"]) for t in tasks
    )


def test_import_maps_verdicts_through_the_order(text_set: ReviewStore, tmp_path: Path):
    out = tmp_path / "ls"
    export_label_studio(text_set, out)
    tasks = _tasks(out)
    ba = next(i for i, t in enumerate(tasks) if t["data"]["order"] == "ba")
    ab = next(i for i, t in enumerate(tasks) if t["data"]["order"] == "ab")
    rest = [i for i in range(len(tasks)) if i not in (ba, ab)]
    carol = {"id": 8, "email": "carol@example.com", "first_name": "Carol", "last_name": ""}
    annotations = {
        ba: [
            _annotation(101, 7, "1", {"clarity": "2", "humanness": "tie"}, "sounded natural"),  # int user id
            _annotation(102, carol, "tie"),
        ],  # user object with an email
        ab: [
            _annotation(103, carol, "1", {"clarity": "1"}),
            _annotation(104, 7, cancelled=True),
        ],  # skipped in Label Studio
        rest[0]: [_annotation(105, 7, None, comment="could not decide")],  # no verdict
        rest[1]: [_annotation(106, 7, "2")],
    }
    export = _write(tmp_path / "export.json", _export(tasks, annotations))
    result = import_label_studio(text_set, export)
    assert result == {
        "annotations": 6,
        "imported": 4,
        "updated": 0,
        "already": 0,
        "skipped": 2,
        "cancelled": 1,
        "reviewers": ["carol", "ls-user-7"],
    }

    votes = {v.event_id: v for v in text_set.votes()}
    assert set(votes) == {"label-studio:101", "label-studio:102", "label-studio:103", "label-studio:106"}
    first = votes["label-studio:101"]
    assert first.pair_id == tasks[ba]["data"]["pair_id"] and first.reviewer == "ls-user-7"
    assert first.winner == "b" and first.swapped and first.shown == "1"  # "1" on a "ba" page is system b
    assert first.criteria == {"clarity": "a", "humanness": "tie"}
    assert first.comment == "sounded natural" and first.seconds_on_item == 12.5 and first.mode == "read"
    assert first.source == "label-studio"
    assert first.created_at == pytest.approx(1714644000.123456)
    assert votes["label-studio:102"].winner == "tie" and votes["label-studio:102"].reviewer == "carol"
    assert votes["label-studio:103"].winner == "a" and votes["label-studio:103"].criteria == {"clarity": "a"}
    assert votes["label-studio:106"].winner == canonical("2", tasks[rest[1]]["data"]["order"] == "ba")
    assert {"carol", "ls-user-7"} <= set(text_set.reviewers())
    for vote in votes.values():  # each new reviewer's item has the task's order
        item = text_set.item(vote.item_id)
        order = next(t["data"]["order"] for t in tasks if t["data"]["pair_id"] == vote.pair_id)
        assert item.swapped == (order == "ba")

    # importing the same export again stores nothing twice
    events = len(text_set.events())
    again = import_label_studio(text_set, export)
    assert again["imported"] == 0 and again["already"] == 4 and again["updated"] == 0
    assert len(text_set.events()) == events and len(text_set.votes()) == 4

    # an annotation edited in Label Studio since: a newer vote that replaces the old one, stored once
    annotations[ba][0] = _annotation(101, 7, "2", {"clarity": "2"}, "sounded natural")
    _write(export, _export(tasks, annotations))
    edited = import_label_studio(text_set, export)
    assert edited["updated"] == 1 and edited["imported"] == 0 and edited["already"] == 3
    live = {v.pair_id: v for v in text_set.votes("ls-user-7")}[tasks[ba]["data"]["pair_id"]]
    assert live.winner == "a" and live.event_id == "label-studio:101:v1" and live.criteria == {"clarity": "a"}
    assert import_label_studio(text_set, export)["already"] == 4

    # reviewer_from="id": the user object's id instead of the email
    annotations = {ab: [_annotation(201, {"id": 8, "email": "carol@example.com"}, "2")]}
    by_id = import_label_studio(
        text_set, _write(tmp_path / "by-id.json", _export(tasks, annotations)), reviewer_from="id"
    )
    assert by_id["reviewers"] == ["ls-user-8"] and by_id["imported"] == 1


def test_import_into_an_existing_item_of_the_other_order(text_set: ReviewStore, tmp_path: Path):
    """alice reviewed in the app and in Label Studio: her existing item's order wins, the winner stays right."""
    out = tmp_path / "ls"
    export_label_studio(text_set, out)
    tasks = _tasks(out)
    alice = text_set.items("alice")
    # one of alice's pairs, its task shown in the other order than her item (as an export with another seed may)
    item = alice[0]
    index = next(i for i, t in enumerate(tasks) if t["data"]["pair_id"] == item.pair_id)
    task_order = "ab" if item.swapped else "ba"
    tasks[index]["data"]["order"] = task_order
    alice_ls = {"id": 3, "email": "alice@example.com"}
    export = _write(
        tmp_path / "export.json", _export(tasks, {index: [_annotation(301, alice_ls, "1", {"clarity": "2"})]})
    )
    result = import_label_studio(text_set, export)
    assert result["imported"] == 1 and result["reviewers"] == ["alice"]
    (vote,) = text_set.votes("alice")
    assert vote.item_id == item.id and len(text_set.items("alice")) == len(alice)  # no second item
    assert vote.winner == canonical("1", task_order == "ba")  # what she chose, in the eval's terms
    assert vote.criteria == {"clarity": canonical("2", task_order == "ba")}
    assert vote.swapped == item.swapped and vote.shown == "2"  # stored in the item's order
    assert import_label_studio(text_set, export)["already"] == 1


def test_bad_exports_are_refused_with_the_file_named(text_set: ReviewStore, tmp_path: Path):
    out = tmp_path / "ls"
    export_label_studio(text_set, out)
    tasks = _tasks(out)
    good = _export(tasks, {0: [_annotation(1, 7, "1")]})

    def refused(data, *needles, raw: str | None = None):
        path = tmp_path / "bad.json"
        path.write_text(raw if raw is not None else json.dumps(data))
        with pytest.raises(VoicetuneError) as error:
            import_label_studio(text_set, path)
        for needle in (str(path), *needles):
            assert needle in str(error.value)

    refused(None, "not JSON", raw="{nope")
    refused({"data": {}}, "list of tasks")
    refused([{"text": "hello", "label": "x"}], "JSON-MIN")  # a JSON-MIN export
    refused([{"id": 1, "data": {"audio": "x.wav"}, "annotations": []}], "task 1", "pair_id")  # another project
    unknown = copy.deepcopy(good)
    unknown[0]["data"]["pair_id"] = "nowhere"
    refused(unknown, "task 1", "'nowhere'")
    order = copy.deepcopy(good)
    order[0]["data"]["order"] = "xy"
    refused(order, "task 1", "order")
    verdict = copy.deepcopy(good)
    verdict[0]["annotations"][0]["result"][0]["value"]["choices"] = ["3"]
    refused(verdict, "task 1 annotation 1", "verdict")
    nobody = copy.deepcopy(good)
    nobody[0]["annotations"][0]["completed_by"] = {"first_name": "x"}
    refused(nobody, "annotation 1", "completed_by")
    with pytest.raises(VoicetuneError, match="no such file"):
        import_label_studio(text_set, tmp_path / "missing.json")
    assert text_set.votes() == []  # nothing was written by a refused import
    # two Label Studio users whose emails give one name: refused, and fine by id
    clash = _export(
        tasks,
        {
            0: [_annotation(1, {"id": 1, "email": "sam@a.com"}, "1")],
            1: [_annotation(2, {"id": 2, "email": "sam@b.com"}, "2")],
        },
    )
    refused(clash, "reviewer_from='id'")
    assert import_label_studio(text_set, tmp_path / "bad.json", reviewer_from="id")["imported"] == 2
