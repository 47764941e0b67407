"""The image builds' pure logic: content keys, .dockerignore, COPY sources, apt sources, archive layout."""

from __future__ import annotations

import json
import tarfile
import tomllib
from pathlib import Path

import pytest
from airflowtask.controlplane import images
from airflowtask.controlplane.images import (
    ImageError,
    content_key,
    context_files,
    copy_sources,
    debian_sources,
    is_ignored,
    read_ignore,
)

DOCKERFILE = """\
ARG PYTHON_IMAGE=python:3.11-slim
FROM ${PYTHON_IMAGE} AS build
COPY pyproject.toml constraints.txt ./
COPY README.md ./
COPY operator/ operator/
FROM ${PYTHON_IMAGE}
COPY --from=build /opt/venv /opt/venv
"""

DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian/20250520T000000Z
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://mirror.example/debian
Suites: bookworm
Components: main

Enabled: no
Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Components: main

Types: deb
URIs: https://deb.nodesource.com/node_20.x
Suites: nodistro
Components: main
"""


def _repo(tmp_path: Path, ignore: str = "**/__pycache__\n**/*.pyc\ntests\n") -> Path:
    files = {
        "Dockerfile": DOCKERFILE,
        ".dockerignore": ignore,
        "pyproject.toml": "[project]\nname = 'x'\n",
        "constraints.txt": "a==1\n",
        "README.md": "hello\n",
        "operator/__init__.py": "",
        "operator/core.py": "VALUE = 1\n",
        "operator/__pycache__/core.cpython-311.pyc": "bytecode",
        "operator/notes.log": "log",
        "tests/test_core.py": "",
        "Makefile": "all:\n",
    }
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path


def _files(root: Path) -> list[str]:
    return context_files(root, copy_sources(root / "Dockerfile"), read_ignore(root / ".dockerignore"))


def _key(root: Path) -> str:
    return content_key(["recipe"], root, _files(root))


def test_context_is_what_copy_reads_minus_dockerignore(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    assert _files(root) == ["README.md", "constraints.txt", "operator/__init__.py", "operator/core.py",
                            "operator/notes.log", "pyproject.toml"]


def test_dockerignore_patterns_and_exceptions(tmp_path: Path) -> None:
    root = _repo(tmp_path, ignore="# comment\n./operator/*.log\n**/__pycache__\n*.md\n!README.md\n")
    assert read_ignore(root / ".dockerignore") == ["operator/*.log", "**/__pycache__", "*.md", "!README.md"]
    assert "operator/notes.log" not in _files(root)
    assert "README.md" in _files(root)
    assert not any("__pycache__" in name for name in _files(root))


@pytest.mark.parametrize(("path", "patterns", "ignored"), [
    ("tests/support/cluster.py", ["tests"], True),
    ("operator/__pycache__/x.pyc", ["**/__pycache__"], True),
    ("__pycache__/x.pyc", ["**/__pycache__"], True),
    ("airflowtask_operator.egg-info/PKG-INFO", ["*.egg-info"], True),
    ("operator/x.egg-info/PKG-INFO", ["*.egg-info"], False),
    ("operator/a.pyc", ["**/*.pyc", "!operator/a.pyc"], False),
    ("operator/core.py", ["operator/c?re.py"], True),
    ("operator/core.py", ["operator/[!c]ore.py"], False),
    ("operator/core.py", ["oper"], False),
])
def test_is_ignored(path: str, patterns: list[str], ignored: bool) -> None:
    assert is_ignored(path, patterns) is ignored


def test_key_follows_content_not_bytecode_or_ignored_files(tmp_path: Path) -> None:
    root = _repo(tmp_path)
    before = _key(root)
    (root / "operator/__pycache__/core.cpython-311.pyc").write_text("other bytecode")
    (root / "operator/__pycache__/new.cpython-311.pyc").write_text("more")
    (root / "tests/test_core.py").write_text("changed")
    (root / "Makefile").write_text("changed")  # not COPYed
    assert _key(root) == before
    (root / "operator/core.py").write_text("VALUE = 2\n")
    changed = _key(root)
    assert changed != before
    (root / "operator/core.py").chmod(0o755)
    assert _key(root) != changed
    (root / "operator/core.py").chmod(0o644)
    (root / "operator/extra.py").write_text("")
    assert _key(root) != changed


def test_key_covers_its_parts() -> None:
    assert content_key(["a", "b"]) != content_key(["ab"])
    assert len(content_key(["a"])) == 12


def test_copy_sources_forms(tmp_path: Path) -> None:
    containerfile = tmp_path / "Containerfile"
    containerfile.write_text(
        'FROM x\n'
        'COPY --chown=1:1 a.txt \\\n'
        '     b.txt /dst/\n'
        'COPY ["c d.txt", "/dst/"]\n'
        'ADD https://example.com/f.tgz /dst/\n'
        'COPY --from=build /opt /opt\n'
        '# COPY not.txt /\n'
        'RUN echo COPY nothing\n')
    assert copy_sources(containerfile) == ["a.txt", "b.txt", "c d.txt"]


def test_debian_sources_from_deb822(tmp_path: Path) -> None:
    sources = tmp_path / "debian.sources"
    sources.write_text(DEB822)
    assert debian_sources([sources]) == [
        "deb http://mirror.example/debian bookworm main",
        "deb http://mirror.example/debian bookworm-updates main",
        "deb http://mirror.example/debian-security bookworm-security main",
    ]


def test_debian_sources_from_one_line_list(tmp_path: Path) -> None:
    listed = tmp_path / "sources.list"
    listed.write_text("# deb http://old.example/debian bookworm main\n"
                      "deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main non-free\n"
                      "deb https://packages.cloud.google.com/apt cloud-sdk-bookworm main\n")
    assert debian_sources([listed]) == ["deb http://mirror.example/debian bookworm main"]


def test_debian_sources_without_a_mirror(tmp_path: Path) -> None:
    sources = tmp_path / "other.sources"
    sources.write_text("Types: deb\nURIs: https://deb.nodesource.com/node_20.x\nSuites: nodistro\nComponents: main\n")
    with pytest.raises(ImageError, match="no Debian bookworm"):
        debian_sources([sources])


def test_repository_dockerfile_builds_from_the_python_image_argument() -> None:
    text = images.DOCKERFILE.read_text()
    assert "ARG PYTHON_IMAGE=" in text
    assert "FROM ${PYTHON_IMAGE}" in text
    assert set(copy_sources(images.DOCKERFILE)) == {"pyproject.toml", "constraints.txt", "README.md", "operator/"}
    assert "ARG OPERATOR_IMAGE" in images.TEST_CONTAINERFILE.read_text()


def test_repository_contexts() -> None:
    operator = images._operator_files()
    assert {"pyproject.toml", "constraints.txt", "README.md", "operator/controlplane/pause/main.go"} <= set(operator)
    assert all(name.startswith("operator/") or "/" not in name for name in operator)
    assert not any(name.endswith(".pyc") or "__pycache__" in name for name in operator)
    test = images._test_files()
    assert test and all(name.startswith("tests/support/") and name.endswith(".py") for name in test)


def test_keys_chain_from_base_to_test() -> None:
    one = images._plan(["deb http://a.example/debian bookworm main"])
    two = images._plan(["deb http://b.example/debian bookworm main"])
    assert one["pause"] == two["pause"]
    for name in ("base", "operator", "test"):
        assert one[name].key != two[name].key
    assert one["operator"].ref.startswith("localhost/airflowtask-operator:")
    assert one["test"].archive.name == f"airflowtask-test-{one['test'].key}.tar"


def test_archives_live_under_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOWTASK_CACHE", str(tmp_path))
    assert images.images_dir() == tmp_path / "images"


def test_docker_archive_layout(tmp_path: Path) -> None:
    layer = tmp_path / "layer.tar"
    with tarfile.open(layer, "w") as tar:
        info = tarfile.TarInfo("pause")
        tar.addfile(info)
    archive = tmp_path / "image.tar"
    images.write_docker_archive(archive, "localhost/x:1", layer, {"Entrypoint": ["/pause"]}, "test")
    with tarfile.open(archive) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
        [entry] = manifest
        config = json.load(tar.extractfile(entry["Config"]))  # type: ignore[arg-type]
        assert tar.extractfile(entry["Layers"][0]).read() == layer.read_bytes()  # type: ignore[union-attr]
    assert entry["RepoTags"] == ["localhost/x:1"]
    assert config["config"] == {"Entrypoint": ["/pause"]}
    assert config["rootfs"]["diff_ids"] == [f"sha256:{entry['Layers'][0].split('/')[0]}"]
    assert len(config["history"]) == 1  # one per layer, or buildah refuses to build on top
    assert not list(tmp_path.glob(".*.tmp"))


def test_pause_sources_ship_with_the_package() -> None:
    pyproject = tomllib.loads((images.REPO / "pyproject.toml").read_text())
    data = pyproject["tool"]["setuptools"]["package-data"]["airflowtask.controlplane"]
    assert {"pause/*.go", "pause/go.mod"} <= set(data)
    assert (images.PAUSE_SOURCE / "main.go").exists()
