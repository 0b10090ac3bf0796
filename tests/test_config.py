from __future__ import annotations

from pathlib import Path

import pytest

from mixtape.config import ConfigError, StrictConfig, load_config, save_config


class Optim(StrictConfig):
    lr: float = 1e-3
    name: str = "adam"


class Run(StrictConfig):
    steps: int = 10
    optim: Optim = Optim()


def test_round_trip(tmp_path: Path) -> None:
    cfg = Run(steps=3, optim=Optim(lr=0.5))
    path = save_config(cfg, tmp_path / "config.yaml")
    assert load_config(Run, path) == cfg


def test_unknown_key_is_named(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("steps: 3\noptim:\n  lrr: 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown key 'optim\.lrr'"):
        load_config(Run, tmp_path / "c.yaml")


def test_wrong_type_is_named(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("steps: many\n")
    with pytest.raises(ConfigError, match=r"key 'steps'.*'many'"):
        load_config(Run, tmp_path / "c.yaml")


def test_overrides_win_over_file(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("steps: 3\n")
    cfg = load_config(Run, tmp_path / "c.yaml", overrides={"optim.lr": 0.25, "steps": 7})
    assert cfg.steps == 7 and cfg.optim.lr == 0.25


@pytest.mark.parametrize("text, match", [("[1, 2]", "mapping"), ("steps: [", "not valid YAML")])
def test_malformed_file(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "c.yaml").write_text(text)
    with pytest.raises(ConfigError, match=match):
        load_config(Run, tmp_path / "c.yaml")


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(Run, tmp_path / "nope.yaml")


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("steps: 3\noptim:\n  lr: [0.1\n  name: adam\n")
    with pytest.raises(ConfigError) as err:
        load_config(Run, tmp_path / "c.yaml")
    assert (
        str(err.value)
        == f"{tmp_path / 'c.yaml'}: not valid YAML at line 4, column 7: expected ',' or ']', but got ':' (while "
        "parsing a flow sequence at line 3)"
    )


def test_config_faults_through_the_cli_exit_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from mixtape.cli import main

    (tmp_path / "tabs.yaml").write_text("data:\n  store: s\n\tpositives: p\n")
    (tmp_path / "latin1.yaml").write_bytes("data: {store: café}\n".encode("latin-1"))
    cases = {
        "tabs.yaml": "tabs.yaml: not valid YAML at line 3, column 1: found character '\\t' that cannot start any token",
        "latin1.yaml": "latin1.yaml: not UTF-8 text",
        "missing.yaml": f"config file not found: {tmp_path / 'missing.yaml'}",
    }
    for name, message in cases.items():
        for argv in (["pretrain", "--config", str(tmp_path / name)], ["experiment", str(tmp_path / name)]):
            assert main(argv) == 2, argv
            err = capsys.readouterr().err
            assert f"mixtape {argv[0]}: error: " in err and message in err and "Traceback" not in err


def test_a_yaml_alias_bomb_is_refused_before_validation(tmp_path: Path) -> None:
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"] + [
        f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 10)}]" for i in range(8)
    ]
    (tmp_path / "bomb.yaml").write_text("\n".join(levels) + "\nsteps: 3\n")  # 10^9 values once expanded
    with pytest.raises(ConfigError, match=r"bomb\.yaml: its YAML aliases expand to more than 100,000 values"):
        load_config(Run, tmp_path / "bomb.yaml")


def test_aliases_of_a_real_config_still_load(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("optim: &opt {lr: 0.5, name: sgd}\nsteps: 3\n")
    assert load_config(Run, tmp_path / "c.yaml", overrides={"optim.name": "adam"}).optim == Optim(lr=0.5, name="adam")


def test_an_override_below_a_plain_value_names_both(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("steps: 3\n")
    with pytest.raises(
        ConfigError, match=r"override steps\.x=1: 'steps' in .*c\.yaml is a value, not a section with keys"
    ):
        load_config(Run, tmp_path / "c.yaml", overrides={"steps.x": 1})
