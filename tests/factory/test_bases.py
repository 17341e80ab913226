"""ModelService.bases: the base models the factory offers a training job."""

from __future__ import annotations

from pathlib import Path

import pytest

from openledger.factory.publish import ModelService


def _service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bases: list[str]) -> ModelService:
    service = ModelService(None, None, None, tmp_path / "models")  # type: ignore[arg-type]
    items = [{"base": b} for b in bases]
    monkeypatch.setattr(service, "list", lambda offset, limit: {"items": items})
    return service


def test_the_tiny_base_once_built_then_each_published_base_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kept, gone = tmp_path / "kept", tmp_path / "gone"
    kept.mkdir()
    (kept / "config.json").write_text("{}")
    service = _service(tmp_path, monkeypatch, ["org/model", str(kept), str(gone), "org/model"])
    assert service.bases() == ["org/model", str(kept)]  # a directory only while it is there
    tiny = tmp_path / "models" / "tiny-base"
    tiny.mkdir(parents=True)
    (tiny / "config.json").write_text("{}")
    assert service.bases() == [str(tiny), "org/model", str(kept)]


def test_a_published_tiny_base_is_offered_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = tmp_path / "models" / "tiny-base"
    tiny.mkdir(parents=True)
    (tiny / "config.json").write_text("{}")
    assert _service(tmp_path, monkeypatch, [str(tiny)]).bases() == [str(tiny)]
