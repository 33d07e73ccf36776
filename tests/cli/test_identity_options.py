"""roomserver's seat and identity options: --reconnect-grace, --identity-secret(-file),
--teachers-only-create; a secret never appears in an error or a repr."""

from __future__ import annotations

from pathlib import Path

import pytest

from roomactors.cli import OPTIONS, UsageError, load_config, main

SECRET = "s3cret-shared-with-the-school-site-0123456789"


@pytest.fixture(autouse=True)
def _no_roomserver_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for option in OPTIONS:
        monkeypatch.delenv(option.env, raising=False)


def test_reconnect_grace() -> None:
    assert load_config([], {}).reconnect_grace == 60.0
    assert load_config(["--reconnect-grace", "0"], {}).reconnect_grace == 0.0
    assert load_config([], {"ROOMSERVER_RECONNECT_GRACE": "2.5"}).reconnect_grace == 2.5
    with pytest.raises(UsageError, match="--reconnect-grace '-1'"):
        load_config(["--reconnect-grace", "-1"], {})


def test_the_secret_from_the_command_line_the_environment_or_a_file(tmp_path: Path) -> None:
    assert load_config([], {}).identity_secret is None
    assert load_config(["--identity-secret", SECRET], {}).identity_secret == SECRET
    assert load_config([], {"ROOMSERVER_IDENTITY_SECRET": SECRET + "\n"}).identity_secret == SECRET
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")  # the trailing newline is not part of the secret
    assert load_config(["--identity-secret-file", str(secret_file)], {}).identity_secret == SECRET
    assert load_config([], {"ROOMSERVER_IDENTITY_SECRET_FILE": str(secret_file)}).identity_secret == SECRET
    # the command line wins over the environment, whichever of the two forms each uses
    assert load_config(["--identity-secret-file", str(secret_file)],
                       {"ROOMSERVER_IDENTITY_SECRET": "x" * 40}).identity_secret == SECRET
    with pytest.raises(UsageError, match="give only one of them"):
        load_config(["--identity-secret", SECRET, "--identity-secret-file", str(secret_file)], {})


def test_a_bad_secret_is_refused_without_being_shown(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    short = "too-short-a-secret"
    with pytest.raises(UsageError) as caught:
        load_config(["--identity-secret", short], {})
    assert "at least 32 bytes" in str(caught.value) and short not in str(caught.value)
    assert main(["--identity-secret", short]) == 2
    assert short not in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.write_text("\n")
    with pytest.raises(UsageError, match="the file is empty"):
        load_config(["--identity-secret-file", str(empty)], {})
    with pytest.raises(UsageError, match="cannot read it"):
        load_config(["--identity-secret-file", str(tmp_path / "missing")], {})
    assert SECRET not in repr(load_config(["--identity-secret", SECRET], {}))


def test_teachers_only_create_is_a_switch() -> None:
    assert load_config([], {}).teachers_only_create is False
    assert load_config(["--teachers-only-create"], {}).teachers_only_create is True
    assert load_config([], {"ROOMSERVER_TEACHERS_ONLY_CREATE": "yes"}).teachers_only_create is True
    assert load_config(["--no-teachers-only-create"], {"ROOMSERVER_TEACHERS_ONLY_CREATE": "1"}).teachers_only_create is False
