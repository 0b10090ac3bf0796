"""The pre-training config: strict keys, typed values, overrides, and the shipped YAML files."""

from __future__ import annotations

from pathlib import Path

import pytest

from mixtape.config import ConfigError
from mixtape.training.config import PretrainConfig, load_pretrain_config, parse_overrides

REPO = Path(__file__).resolve().parents[2]


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


def test_defaults_follow_cola_with_a_cosine_score(tmp_path: Path) -> None:
    cfg = load_pretrain_config(_write(tmp_path, "data: {store: s, positives: p}\n"))
    # COLA's encoder, head and optimiser; the score is cosine / 0.1 (docs/evidence.md says why)
    assert (cfg.model.backbone, cfg.model.projection_dim, cfg.model.similarity, cfg.model.temperature) == (
        "efficientnet_b0",
        512,
        "cosine",
        0.1,
    )
    assert (cfg.optim.name, cfg.optim.lr) == ("adam", 1e-3)
    assert cfg.data.patch_frames == 128 and cfg.trainer.precision == "auto"


def test_unknown_key_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "data: {store: s, positives: p}\noptim: {learning_rate: 0.1}\n")
    with pytest.raises(ConfigError, match=r"unknown key 'optim\.learning_rate'"):
        load_pretrain_config(path)


def test_wrong_type_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, "data: {store: s, positives: p, batch_size: many}\n")
    with pytest.raises(ConfigError, match=r"key 'data\.batch_size'"):
        load_pretrain_config(path)


def test_missing_required_section_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"key 'data'"):
        load_pretrain_config(_write(tmp_path, "model: {backbone: small}\n"))


def test_overrides_are_yaml_typed_and_win(tmp_path: Path) -> None:
    overrides = parse_overrides(
        ["trainer.max_steps=7", "model.symmetric=true", "model.backbone=small", "trainer.devices=auto"]
    )
    assert overrides == {
        "trainer.max_steps": 7,
        "model.symmetric": True,
        "model.backbone": "small",
        "trainer.devices": "auto",
    }
    cfg = load_pretrain_config(
        _write(tmp_path, "data: {store: s, positives: p}\ntrainer: {max_steps: 100}\n"), overrides
    )
    assert cfg.trainer.max_steps == 7 and cfg.model.symmetric is True


def test_override_without_equals_is_refused() -> None:
    with pytest.raises(ConfigError, match="key=value"):
        parse_overrides(["trainer.max_steps"])


@pytest.mark.parametrize("name", ["pretrain_small.yaml", "pretrain_efficientnet.yaml"])
def test_shipped_configs_load(name: str) -> None:
    cfg = load_pretrain_config(REPO / "configs" / name)
    assert isinstance(cfg, PretrainConfig)


def test_cpu_config_is_the_small_backbone_on_cpu(tmp_path: Path) -> None:
    from mixtape.training import cpu_config

    cfg = cpu_config("s", "p", tmp_path, max_steps=40)
    assert (cfg.model.backbone, cfg.trainer.accelerator, cfg.trainer.max_steps, cfg.trainer.checkpoint_every) == (
        "small",
        "cpu",
        40,
        20,
    )
