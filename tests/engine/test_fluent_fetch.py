"""``rdtf data fetch fluent`` with a fake npm (no network): safe unpacking, integrity, verification, manifest."""

from __future__ import annotations

import io
import json
import tarfile

import pytest
from fluent_fixtures import RESERVED, STEMS, install_fake_npm, make_tarballs, webp

from rdtf_engine.cli.main import main
from rdtf_engine.core.errors import DependencyError, UnsafeInputError
from rdtf_engine.data.fluent_fetch import asset_members, fetch_fluent, read_manifest, verify_asset


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("RDTF_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RDTF_FLUENT_CACHE", raising=False)
    return tmp_path / "home"


def test_fetch_with_npm_verifies_and_writes_a_manifest(tmp_path, home, monkeypatch, capsys):
    install_fake_npm(tmp_path, make_tarballs(tmp_path / "npm"), monkeypatch)
    assert main(["data", "fetch", "fluent", "--workers", "1", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["counts"] == {"files": len(STEMS), "animated": len(STEMS) - 1, "still": 1, "rejected": 0,
                                "bytes": report["counts"]["bytes"]}
    by_split = report["listing"]["by_split"]
    assert by_split["reserved"] == len(RESERVED) and by_split["still"] == 1
    manifest = read_manifest(home / "cache" / "data" / "fluent")
    assert manifest is not None and manifest["license"] == "MIT"
    assert [p["integrity_checked"] for p in manifest["packages"]] == ["npm"] * 4
    wave = manifest["files"]["1f44b-1f3fd"]
    assert (wave["frames"], wave["width"], wave["height"], wave["frame_ms"]) == (24, 64, 64, 40)
    assert len(wave["sha256"]) == 64 and str(tmp_path) not in json.dumps(manifest)  # no local paths
    assert sorted(p.name for p in (home / "cache" / "data").iterdir()) == ["fluent"]  # no partial left


def test_fetch_refuses_a_tarball_that_does_not_match_its_integrity(tmp_path, home, monkeypatch):
    install_fake_npm(tmp_path, make_tarballs(tmp_path / "npm"), monkeypatch, bad_integrity=True)
    with pytest.raises(UnsafeInputError, match="integrity"):
        fetch_fluent(workers=1)
    assert read_manifest() is None


def test_known_version_is_checked_against_the_pinned_hash(tmp_path, home, monkeypatch):
    # a tarball claiming to be the pinned 1.0.0 but with other bytes: npm's own hash agrees, ours does not
    install_fake_npm(tmp_path, make_tarballs(tmp_path / "npm", version="1.0.0"), monkeypatch, version="1.0.0")
    with pytest.raises(UnsafeInputError, match="integrity"):
        fetch_fluent(workers=1)


def test_without_npm_the_cli_says_how_to_install_it(tmp_path, home, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    assert main(["data", "fetch", "fluent"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "apt-get install npm" in err and "Traceback" not in err
    with pytest.raises(DependencyError):
        fetch_fluent(workers=1)


def test_fetch_from_a_folder_needs_a_pinned_version(tmp_path, home):
    make_tarballs(tmp_path / "tgz")
    with pytest.raises(UnsafeInputError, match="pinned"):
        fetch_fluent(from_dir=tmp_path / "tgz", workers=1)


def _tarball(tmp_path, members) -> object:
    path = tmp_path / "evil.tgz"
    with tarfile.open(path, "w:gz") as tar:
        for name, kind, data in members:
            info = tarfile.TarInfo(name)
            if kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    return path


@pytest.mark.parametrize("members", [
    [("package/../../escape.webp", "file", b"x")],
    [("/abs/1f44b.webp", "file", b"x")],
    [("package/assets/1f44b.webp", "sym", b"")],
])
def test_unsafe_tarball_entries_are_refused(tmp_path, members):
    with pytest.raises(UnsafeInputError):
        list(asset_members(_tarball(tmp_path, members)))


def test_only_code_point_named_webps_are_taken(tmp_path):
    good = webp(4)
    path = _tarball(tmp_path, [("package/assets/1f44b.webp", "file", good), ("package/assets/notes.webp", "file", b"x"),
                               ("package/assets/sub/1f44c.webp", "file", good), ("package/package.json", "file", b"{}"),
                               ("package/assets/1f3f4-e0067_e0062_e0065_e006e_e0067_e007f.webp", "file", good)])
    assert [s for s, _ in asset_members(path)] == ["1f44b", "1f3f4-e0067-e0062-e0065-e006e-e0067-e007f"]


def test_verify_rejects_what_does_not_decode_or_is_not_sane():
    info = verify_asset(webp(6), "1f44b.webp")
    assert info["frames"] == 6 and info["loop_ms"] == 240
    with pytest.raises(Exception, match="(?i)damaged|truncated|not|format"):
        verify_asset(webp(6)[:200], "1f44b.webp")
    with pytest.raises(Exception, match="sane"):
        verify_asset(webp(3, side=32), "1f44b.webp")
