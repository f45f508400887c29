"""The ``stateport`` command, run in-process through ``main`` (and once as a real process)."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from _cli import json_lines, one_json, run, using  # tests/ is on sys.path

import stateport
from stateport.cli import _blobs, _common, build_parser, main
from stateport.demo import STEPS

DIGEST_OF_NOTHING_STORED = "0" * 64


def db_url(tmp_path: Path, name: str = "s.db") -> str:
    return f"sqlite:///{tmp_path}/{name}"


def fs_url(tmp_path: Path) -> str:
    return f"{db_url(tmp_path)}?blobs={tmp_path}/blobs"


def blob_file(tmp_path: Path, digest: str) -> Path:
    return tmp_path / "blobs" / "objects" / digest[:2] / digest[2:]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's STATEPORT_URL or writes to the working directory."""
    monkeypatch.delenv("STATEPORT_URL", raising=False)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)


# --------------------------------------------------------------------------- the parser


def _walk(parser: argparse.ArgumentParser, path: list[str]) -> Iterator[tuple[list[str], str]]:
    yield path, parser.description or ""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _walk(sub, [*path, name])


def test_every_command_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    commands = list(_walk(build_parser(), []))
    paths = {" ".join(path) for path, _ in commands}
    assert {"db migrate", "db version", "db info", "blobs put", "blobs get"} <= paths
    assert {"blobs ls", "blobs verify", "demo", "db", "blobs", ""} <= paths
    assert {"items get", "items put", "items query", "items delete"} <= paths
    assert {"council ls", "council show", "council events", "cas contains", "cas delete"} <= paths
    assert {f"runs {c}" for c in ("create", "append", "complete", "fail", "cancel")} <= paths
    assert {"work create feature", "work create wp", "work move feature", "work move wp"} <= paths
    assert {f"work {c}" for c in ("depend", "evidence", "metrics", "governance", "sync")} <= paths
    assert "work devices" in paths
    for path, description in commands:
        assert description.strip(), f"'stateport {' '.join(path)}' has no description"
        code, out, _ = run(capsys, *path, "--help")
        assert code == 0, path
        assert " ".join(description.split()) in " ".join(out.split()), path
        assert "--url" in out, path


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"stateport {stateport.__version__}"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["db"],
        ["blobs"],
        ["frobnicate"],
        ["db", "frobnicate"],
        ["db", "migrate", "--stop-before", "zero"],
        ["db", "migrate", "--stop-before", "0"],
        ["blobs", "put"],
        ["blobs", "get"],
    ],
)
def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert "usage:" in err
    assert out == ""


# --------------------------------------------------------------------------- db


def test_db_on_a_fresh_database(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = db_url(tmp_path)
    for look in ("version", "info"):  # commands that only look never create a database
        code, _, err = run(capsys, "db", look, "--url", url)
        assert code == 1
        assert "no database at" in err and "stateport db migrate" in err
        assert not (tmp_path / "s.db").exists()

    (tmp_path / "s.db").touch()  # an empty file is an empty SQLite database
    code, out, _ = run(capsys, "db", "version", "--url", url)
    assert code == 0
    assert "schema version 0 of 2" in out
    assert "2 pending" in out

    code, out, _ = run(capsys, "db", "migrate", "--url", url)
    assert code == 0
    assert "applied migration 1: items" in out
    assert "applied migration 2: blobs" in out
    assert "schema version 2 of 2 (up to date)" in out

    code, out, _ = run(capsys, "db", "migrate", "--url", url)
    assert code == 0
    assert out.strip() == "up to date (schema version 2)"

    code, out, _ = run(capsys, "db", "version", "--url", url)
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "schema version 2 of 2 (up to date)"
    assert lines[1].split()[:2] == ["1", "items"]
    assert lines[2].split()[:2] == ["2", "blobs"]
    assert all(len(line.split()) == 3 for line in lines[1:])  # with its timestamp

    code, out, _ = run(capsys, "db", "info", "--url", url)
    assert code == 0
    assert "url:" in out and url in out
    assert "from:" in out and "--url" in out
    assert "engine:" in out and "sqlite" in out
    assert "schema:" in out and "version 2 of 2" in out
    assert "capabilities:" in out and "migrations, multi-process, persistent" in out
    assert "max item bytes:" in out and "409600" in out
    assert "gsi1 (gsi1pk, gsi1sk)" in out


def test_db_version_with_a_pending_migration(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = db_url(tmp_path)
    code, out, _ = run(capsys, "db", "migrate", "--stop-before", "2", "--url", url)
    assert code == 0
    assert "applied migration 1: items" in out
    assert "blobs" not in out

    code, out, _ = run(capsys, "db", "migrate", "--stop-before", "2", "--url", url)
    assert code == 0
    assert "nothing to apply before version 2" in out

    for argv in (["db", "version", "--url", url], ["--url", url, "db", "version"]):
        code, out, _ = run(capsys, *argv)
        assert code == 0
        assert "1 of 2" in out
        assert "1 pending" in out
        assert "blobs" not in out

    code, out, _ = run(capsys, "db", "info", "--url", url)
    assert code == 0
    assert "version 1 of 2" in out


def test_url_before_or_after_the_command(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = db_url(tmp_path)
    assert run(capsys, "db", "migrate", "--url", url)[0] == 0
    for argv in (
        ["--url", url, "db", "info"],
        ["db", "--url", url, "info"],
        ["db", "info", "--url", url],
        ["db", "info", f"--url={url}"],
    ):
        code, out, _ = run(capsys, *argv)
        assert code == 0, argv
        assert out.splitlines()[0].split() == ["url:", url]


def test_url_from_the_environment_and_the_config_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # no store exists yet: info still says where it would be, then fails
    code, out, err = run(capsys, "db", "info")
    assert code == 1 and "no database at" in err
    assert stateport.DEFAULT_URL in out
    assert "default" in out

    toml_url = db_url(tmp_path, "from-toml.db")
    Path("stateport.toml").write_text(f'[storage]\nurl = "{toml_url}"\n', encoding="utf-8")
    assert run(capsys, "db", "migrate", "--url", toml_url)[0] == 0
    code, out, _ = run(capsys, "db", "info")
    assert code == 0
    assert toml_url in out
    assert "stateport.toml" in out

    env_url = db_url(tmp_path, "from-env.db")
    monkeypatch.setenv("STATEPORT_URL", env_url)
    assert run(capsys, "db", "migrate")[0] == 0
    code, out, _ = run(capsys, "db", "info")
    assert code == 0
    assert env_url in out
    assert "STATEPORT_URL" in out

    code, out, _ = run(capsys, "db", "info", "--url", "memory://")
    assert code == 0
    assert "memory://" in out


def test_bad_url_is_an_error_without_traceback(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["db", "version", "--url", "nope://x"], ["--url", "nope://x", "blobs", "ls"]):
        code, out, err = run(capsys, *argv)
        assert code == 1
        assert out == ""
        assert err.startswith("error: ")
        assert "nope" in err
        assert "Traceback" not in err


def test_empty_url_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "db", "migrate", "--url", "")
    assert code == 1
    assert err.startswith("error: --url is empty")
    assert not (Path.cwd() / ".stateport").exists()


def test_bad_config_file_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    Path("stateport.toml").write_text("[storage]\n", encoding="utf-8")
    code, _, err = run(capsys, "db", "info")
    assert code == 1
    assert err.startswith("error: ")


# --------------------------------------------------------------------------- blobs


def test_blobs_round_trip_and_corruption(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = fs_url(tmp_path)
    data = os.urandom(3 * 1024 * 1024 + 123)  # several chunks
    src = tmp_path / "data.bin"
    src.write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()

    code, out, _ = run(capsys, "blobs", "put", str(src), "--url", url)
    assert code == 0
    assert out == f"{digest}  {src}\n"
    assert blob_file(tmp_path, digest).read_bytes() == data

    dest = tmp_path / "copy.bin"
    code, out, _ = run(capsys, "blobs", "get", digest, "-o", str(dest), "--url", url)
    assert code == 0
    assert dest.read_bytes() == data

    code, out, _ = run(capsys, "blobs", "ls", "--url", url)
    assert code == 0
    assert out == f"{digest}  {len(data)}\n"

    code, out, _ = run(capsys, "blobs", "verify", "--url", url)
    assert code == 0
    assert "1 blob checked, all intact" in out
    code, out, _ = run(capsys, "blobs", "verify", digest, "--url", url)
    assert code == 0

    blob_file(tmp_path, digest).write_bytes(b"not the original content")

    code, out, _ = run(capsys, "blobs", "verify", "--url", url)
    assert code == 1
    assert f"corrupt  {digest}" in out.splitlines()
    assert "1 failed verification" in out

    broken = tmp_path / "broken.bin"
    code, out, err = run(capsys, "blobs", "get", digest, "-o", str(broken), "--url", url)
    assert code == 1
    assert err.startswith("error: ") and "corrupt" in err
    assert not broken.exists()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".part")) == []

    # a failed get does not touch an existing output file either
    code, _, _ = run(capsys, "blobs", "get", digest, "-o", str(dest), "--url", url)
    assert code == 1
    assert dest.read_bytes() == data


def test_blobs_in_the_database_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = db_url(tmp_path)
    files = {"a.txt": b"alpha\n", "b.txt": b"bravo\n", "empty": b""}
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    code, out, _ = run(capsys, "blobs", "put", *(str(tmp_path / n) for n in files), "--url", url)
    assert code == 0
    expected = {hashlib.sha256(c).hexdigest(): len(c) for c in files.values()}
    assert [line.split("  ")[0] for line in out.splitlines()] == [
        hashlib.sha256(c).hexdigest() for c in files.values()
    ]

    code, out, _ = run(capsys, "blobs", "ls", "--url", url)
    assert code == 0
    listed = dict(line.split("  ") for line in out.splitlines())
    assert {d: int(s) for d, s in listed.items()} == expected
    assert list(listed) == sorted(listed)

    code, out, _ = run(capsys, "blobs", "verify", "--url", url)
    assert code == 0
    assert "3 blobs checked, all intact" in out


def test_blobs_get_to_stdout(capsysbinary: pytest.CaptureFixture[bytes], tmp_path: Path) -> None:
    url = db_url(tmp_path)
    data = bytes(range(256)) * 5000
    src = tmp_path / "data.bin"
    src.write_bytes(data)
    assert main(["blobs", "put", str(src), "--url", url]) == 0
    digest = capsysbinary.readouterr().out.split()[0].decode()
    for argv in (["blobs", "get", digest], ["blobs", "get", digest, "-o", "-"]):
        assert main([*argv, "--url", url]) == 0
        assert capsysbinary.readouterr().out == data


def test_blobs_put_from_stdin(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"from standard input\n" * 1000
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))
    code, out, _ = run(capsys, "blobs", "put", "-", "--url", db_url(tmp_path))
    assert code == 0
    assert out == f"{hashlib.sha256(data).hexdigest()}  -\n"


def test_blobs_put_reports_progress_for_big_files(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_blobs, "PROGRESS_THRESHOLD", 1000)
    monkeypatch.setattr(_common, "PROGRESS_INTERVAL", 0.0)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024))
    code, out, err = run(capsys, "blobs", "put", str(src), "--url", db_url(tmp_path))
    assert code == 0
    assert out.endswith(f"  {src}\n")
    assert f"{src}: 3.0 MiB of 3.0 MiB (100%)" in err

    small = tmp_path / "small.bin"
    small.write_bytes(b"x" * 100)
    code, _, err = run(capsys, "blobs", "put", str(small), "--url", db_url(tmp_path))
    assert code == 0
    assert err == ""


def test_blobs_verify_reports_progress(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = db_url(tmp_path)
    names = []
    for i in range(5):
        (tmp_path / f"{i}.txt").write_text(f"blob {i}\n")
        names.append(str(tmp_path / f"{i}.txt"))
    assert run(capsys, "blobs", "put", *names, "--url", url)[0] == 0
    monkeypatch.setattr(_common, "PROGRESS_INTERVAL", 0.0)
    code, out, err = run(capsys, "blobs", "verify", "--url", url)
    assert code == 0
    assert "5 blobs checked, all intact" in out
    assert "verify: 5 blobs" in err


def test_blobs_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    url = db_url(tmp_path)
    assert run(capsys, "db", "migrate", "--url", url)[0] == 0  # get and verify only look
    out_file = tmp_path / "out.bin"
    code, out, err = run(
        capsys, "blobs", "get", DIGEST_OF_NOTHING_STORED, "-o", str(out_file), "--url", url
    )
    assert code == 1
    assert err.startswith("error: ") and "not stored" in err
    assert not out_file.exists()

    code, _, err = run(capsys, "blobs", "get", "xyz", "--url", url)
    assert code == 1
    assert err.startswith("error: ") and "invalid digest" in err

    code, out, _ = run(capsys, "blobs", "verify", DIGEST_OF_NOTHING_STORED, "--url", url)
    assert code == 1
    assert f"missing  {DIGEST_OF_NOTHING_STORED}" in out

    good = tmp_path / "good.txt"
    good.write_text("good\n")
    missing = tmp_path / "missing.txt"
    code, out, err = run(capsys, "blobs", "put", str(missing), str(good), "--url", url)
    assert code == 1
    assert out.endswith(f"  {good}\n")  # the other files are still stored
    assert err.startswith(f"error: cannot read {missing}")

    assert run(capsys, "blobs", "put", str(good), "--url", url)[0] == 0
    digest = hashlib.sha256(b"good\n").hexdigest()
    code, _, err = run(
        capsys, "blobs", "get", digest, "-o", str(tmp_path / "no" / "dir" / "x"), "--url", url
    )
    assert code == 1
    assert err.startswith("error: cannot write")


# --------------------------------------------------------------------------- demo


def test_demo_runs_twice_on_the_same_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = db_url(tmp_path)
    outputs = []
    for _ in range(2):
        code, out, err = run(capsys, "demo", "--url", url)
        assert code == 0, err
        outputs.append(out)
    first, second = outputs
    for out in outputs:
        assert f"store: {url} (from --url)" in out
        assert f"[1/{len(STEPS)}] Put items" in out
        assert "Conflict: operation 1" in out
        assert "nothing was applied" in out
        assert "page 3 (limit 3): event#007" in out
        assert "due#2024-06-15  task#2" in out
        assert "schema version 2 of 2" in out
        assert "append_event(seq=2) again -> Conflict" in out
        assert "complete_run -> COMPLETED" in out
        assert "rollback -> #3 restores #1" in out
        assert "rollback again -> NoPreviousRelease" in out
        assert f"done: {len(STEPS)} steps" in out
    assert "(new)" in first
    assert "already stored: deduplicated" in second


def test_demo_help_lists_what_the_demo_does(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "demo", "--help")
    assert code == 0
    for i, s in enumerate(STEPS, 1):
        assert f"{i:>2}. {s.title}\n" in out


def test_demo_on_the_default_store(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "demo")
    assert code == 0
    assert f"store: {stateport.DEFAULT_URL} (from default)" in out
    assert (Path.cwd() / ".stateport" / "state.db").is_file()


def test_demo_on_memory(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "demo", "--url", "memory://")
    assert code == 0, err
    assert f"done: {len(STEPS)} steps" in out


# --------------------------------------------------------------------------- exits


def test_ctrl_c_exits_130(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def interrupted(url: str, **options: object) -> object:
        raise KeyboardInterrupt

    monkeypatch.setattr(_common, "open_engine", interrupted)
    code, _, err = run(capsys, "db", "version", "--url", db_url(tmp_path))
    assert code == 130
    assert "Traceback" not in err


def test_the_installed_command(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "stateport"
    commands = [[sys.executable, "-m", "stateport"]]
    if script.exists():
        commands.append([str(script)])
    url = db_url(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "STATEPORT_URL"}
    for command in commands:
        done = subprocess.run(
            [*command, "db", "migrate", "--url", url],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        done = subprocess.run(
            [*command, "--url", url, "db", "version"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert "schema version 2 of 2" in done.stdout
        done = subprocess.run(
            [*command, "db", "version", "--url", "nope://x"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
        assert done.returncode == 1
        assert done.stderr.startswith("error: ")
        assert "Traceback" not in done.stderr
        done = subprocess.run(
            [*command, "db", "nothing"], capture_output=True, text=True, env=env, timeout=60
        )
        assert done.returncode == 2
        assert "usage: stateport" in done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["db", "version"],
        ["blobs", "ls"],
        ["blobs", "verify"],
        ["blobs", "get", "a" * 64],
        ["items", "get", "p", "s"],
        ["items", "query", "p"],
        ["items", "delete", "p", "s"],
        ["runs", "list"],
        ["runs", "show", "r1"],
        ["runs", "events", "r1"],
        ["runs", "append", "r1", "kind"],
        ["runs", "complete", "r1"],
        ["runs", "fail", "r1"],
        ["runs", "cancel", "r1"],
        ["releases", "list"],
        ["releases", "history", "agent"],
        ["releases", "rollback", "agent"],
        ["cas", "contains", "a" * 64],
        ["cas", "delete", "a" * 64],
        ["council", "ls"],
        ["council", "show", "c1"],
        ["council", "events", "c1"],
        ["work", "features"],
        ["work", "wps", "some-feature"],
        ["work", "ready", "some-feature"],
        ["work", "audit", "some-feature"],
        ["work", "create", "wp", "some-feature", "1", "title"],
        ["work", "move", "feature", "some-feature", "PLAN", "--actor", "a"],
        ["work", "move", "wp", "1", "DOING", "--actor", "a"],
        ["work", "depend", "2", "1"],
        ["work", "evidence", "--wp", "1"],
        ["work", "metrics", "some-feature"],
        ["work", "governance", "some-feature"],
        ["work", "sync"],
        ["work", "devices"],
        ["audit", "verify"],
        ["audit", "head", "--feature", "some-feature"],
    ],
)
def test_commands_that_need_a_store_never_create_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str]
) -> None:
    """Listings, and writes to records that must exist, refuse a URL with no store
    behind it (a typo) instead of leaving an empty database there."""
    code, _, err = run(capsys, *argv, "--url", db_url(tmp_path, "typo.db"))
    assert code == 1 and "no database" in err, err
    assert not (tmp_path / "typo.db").exists()


# --------------------------------------------------------------------------- items


def test_items_put_get_query_delete(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = db_url(tmp_path)
    code, out, _ = run(capsys, "--url", url, "items", "put", "doc#1", "meta", '{"title": "A"}')
    assert code == 0 and out == "put the item under pk 'doc#1' sk 'meta' (1 attribute)\n"
    assert using(url, lambda sp: sp.items.get("doc#1", "meta")) == {
        "pk": "doc#1",
        "sk": "meta",
        "title": "A",
    }
    item = {"pk": "doc#1", "sk": "v#2", "n": 2, "tags": ["x"], "nested": {"ok": True}}
    code, out, _ = run(
        capsys, "--url", url, "items", "put", "doc#1", "v#2", json.dumps(item), "--json"
    )
    assert code == 0 and one_json(out) == item
    monkeypatch.setattr(sys, "stdin", io.StringIO('{"n": 1, "text": "é"}'))
    code, out, _ = run(capsys, "--url", url, "items", "put", "doc#1", "v#1", "-")
    assert code == 0 and "(2 attributes)" in out
    assert using(url, lambda sp: sp.items.get("doc#1", "v#1")) == {
        "pk": "doc#1",
        "sk": "v#1",
        "n": 1,
        "text": "é",
    }

    code, out, _ = run(capsys, "--url", url, "items", "get", "doc#1", "v#2")
    assert code == 0 and json.loads(out) == item and len(out.splitlines()) > 1
    code, out, _ = run(capsys, "--url", url, "items", "get", "doc#1", "v#2", "--json")
    assert one_json(out) == item

    code, out, _ = run(capsys, "--url", url, "items", "query", "doc#1", "v#", "--json")
    assert [i["sk"] for i in json_lines(out)] == ["v#1", "v#2"]
    code, out, _ = run(capsys, "--url", url, "items", "query", "doc#1")
    assert [line.split("  ")[0] for line in out.splitlines()] == ["meta", "v#1", "v#2"]
    assert out.splitlines()[0] == 'meta  {"title": "A"}'
    code, out, _ = run(capsys, "--url", url, "items", "query", "doc#2")
    assert code == 0 and out == ""

    code, out, _ = run(capsys, "--url", url, "items", "delete", "doc#1", "v#1")
    assert code == 0 and out == "deleted the item under pk 'doc#1' sk 'v#1'\n"
    assert using(url, lambda sp: sp.items.get("doc#1", "v#1")) is None
    code, out, _ = run(capsys, "--url", url, "items", "delete", "doc#1", "v#1", "--json")
    assert code == 0 and one_json(out) == {"pk": "doc#1", "sk": "v#1", "deleted": False}
    code, out, _ = run(capsys, "--url", url, "items", "delete", "doc#1", "v#1")
    assert code == 0 and out == "no item under pk 'doc#1' sk 'v#1': nothing deleted\n"

    code, out, err = run(capsys, "--url", url, "items", "get", "doc#1", "v#1")
    assert code == 1 and out == "" and err == "error: no item under pk 'doc#1' sk 'v#1'\n"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["items", "put", "p", "s", "{nope"], "the item is not JSON"),
        (["items", "put", "p", "s", "[1, 2]"], "must be a JSON object, got list"),
        (["items", "put", "p", "s", '{"pk": "q"}'], "pk is 'q' but PK is 'p'"),
        (["items", "put", "p", "s", '{"sk": 1}'], "sk is 1 but SK is 's'"),
        (["items", "put", "p", "s", '{"a": NaN}'], "NaN"),
        (["items", "put", "p", "s", '{"a": 1e400}'], "too large"),
        (["items", "put", "p", "s", "[" * 100_000 + "]" * 100_000], "not JSON"),
        (["items", "put", "", "s", "{}"], "pk"),
        (["items", "query", ""], "partition key"),
    ],
)
def test_items_refuse_bad_input_and_change_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], message: str
) -> None:
    url = db_url(tmp_path)
    assert run(capsys, "--url", url, "items", "put", "p", "s", '{"kept": true}')[0] == 0
    code, out, err = run(capsys, "--url", url, *argv)
    assert code == 1 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert using(url, lambda sp: sp.items.query("p")) == [{"pk": "p", "sk": "s", "kept": True}]
