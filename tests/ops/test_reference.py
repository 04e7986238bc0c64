"""The configuration reference in the docs is what the settings classes generate: a change to either fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from koprogo_iot.cli import main
from koprogo_iot.cli.options import variables
from koprogo_iot.cli.reference import FRENCH, render, replace_in

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [("docs/operations.md", "en"), ("docs/exploitation.md", "fr"), ("README.md", "en")]


@pytest.mark.parametrize(("path", "lang"), DOCUMENTS)
def test_the_documented_reference_is_the_generated_one(path: str, lang: str) -> None:
    text = (ROOT / path).read_text(encoding="utf-8")
    assert render(lang) in text, f"{path} is stale: regenerate it with `koprogo-iot config reference --lang {lang}`"


def test_every_variable_has_a_french_description_and_none_is_stale() -> None:
    assert set(FRENCH) == {v.env for v in variables()}


def test_the_command_prints_the_reference(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "reference", "--lang", "fr"]) == 0
    out = capsys.readouterr().out
    assert out == render("fr") and "| `KOPROGO_MQTT_HOST` | `--mqtt-host` |" in out


def test_replacing_keeps_the_rest_of_the_document() -> None:
    document = "before\n" + render("en").replace("| `KOPROGO_MODE`", "| `KOPROGO_OLD`") + "after\n"
    assert replace_in(document) == "before\n" + render("en") + "after\n"
