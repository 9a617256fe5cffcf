"""Verb forms for the rewrites ("cancel" -> "cancelled", "has" -> "hasn't", "does not apply" -> "applies"), from
``lemminflect``. The spelling is the corpus's: a final -l doubles ("cancelled", "labelled")."""

from __future__ import annotations

from functools import lru_cache

from lemminflect import getAllLemmas, getAllLemmasOOV, getInflection


def _spelling(verb: str, forms: tuple[str, ...]) -> str:
    """One of ``lemminflect``'s spellings: a plain word ("resent", not "re-sent"), a final -l doubled."""
    plain = [form for form in forms if form.isalpha()] or list(forms)
    doubled = [form for form in plain if verb.endswith("l") and form.startswith(verb + "l")]
    return (doubled or plain or [verb])[0]


@lru_cache(maxsize=4096)
def past(verb: str) -> str:
    """ "send" -> "sent", "cancel" -> "cancelled"."""
    return "was" if verb == "be" else _spelling(verb, getInflection(verb, tag="VBD"))


@lru_cache(maxsize=4096)
def participle(verb: str) -> str:
    """ "send" -> "sent", "freeze" -> "frozen"."""
    return _spelling(verb, getInflection(verb, tag="VBN"))


@lru_cache(maxsize=4096)
def third(verb: str) -> str:
    """ "apply" -> "applies", "have" -> "has"."""
    return _spelling(verb, getInflection(verb, tag="VBZ"))


@lru_cache(maxsize=4096)
def looks_participle(word: str) -> bool:
    """ "cancelled", "taken", "paid": a past participle that is not also the verb's base form ("set", "come")."""
    if not word.isalpha():
        return False
    lemmas = getAllLemmas(word, upos="VERB").get("VERB") or getAllLemmasOOV(word, upos="VERB").get("VERB", ())
    return any(word != lemma and word in getInflection(lemma, tag="VBN") for lemma in lemmas)
