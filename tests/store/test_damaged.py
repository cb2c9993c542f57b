"""A damaged store or one that cannot be reached: one line naming it, exit status 2."""

from __future__ import annotations

import socket

from click.testing import CliRunner

from skfleet.cli import main


def run_cli(*args: str):
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_model_json_that_is_not_an_object(tmp_path):
    version = tmp_path / "store" / "m" / "1"
    version.mkdir(parents=True)
    (version / "model.json").write_text("[]")
    (version / "model.skops").write_bytes(b"")
    store = str(tmp_path / "store")
    code, out, _ = run_cli("models", "list", "--store", store, "--json")
    assert code == 0 and '"m"' in out  # listed, without details
    code, _, err = run_cli("models", "show", "m", "--store", store)
    assert code == 2, err
    assert "model.json of m@1" in err and "damaged" in err and "list" in err
    assert len(err.strip().splitlines()) == 1


def test_s3_store_without_credentials(monkeypatch, tmp_path):
    with socket.socket() as sock:  # nothing listens here: no request may leave this machine
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    code, _, err = run_cli("models", "list", "--store", "s3://models-bucket/team")
    assert code == 2, err
    assert "s3://models-bucket/team" in err and "credentials" in err
    assert len(err.strip().splitlines()) == 1
