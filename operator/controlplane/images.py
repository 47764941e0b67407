"""Build the images the local node runs, offline and cached by content, and import them into containerd.

* base: Debian bookworm + python3 from the machine's own apt mirror (mmdebstrap), one layer;
* operator: the repository's ``Dockerfile`` built with buildah ``FROM`` the base;
* test: ``tests/e2e/image/Containerfile`` ``FROM`` the operator image (adds ``tests/support/*.py``);
* pause: our own static Go program (``pause/``), one layer.

Every image is named ``localhost/airflowtask-<name>:<key>``, the key hashing everything it is made of.
Its ``docker save`` archive lives in ``<cache>/images/``; buildah keeps its own storage (and layer cache)
there too. An image is imported into containerd's ``k8s.io`` namespace only when containerd lacks it.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import json
import os
import platform
import posixpath
import re
import shlex
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import NamedTuple

from . import build, host

Log = Callable[[str], None]

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
TEST_CONTAINERFILE = REPO / "tests" / "e2e" / "image" / "Containerfile"
PAUSE_SOURCE = Path(__file__).resolve().parent / "pause"
NAMESPACE = "k8s.io"  # containerd's namespace for the kubelet's (CRI's) images
SNAPSHOTTER = "overlayfs"  # the CRI plugin's snapshotter: imports are unpacked for it
SUITE = "bookworm"
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates", "passwd")  # passwd: the Dockerfile's useradd
APT_SOURCES = Path("/etc/apt")
# Change a recipe version when the way an image is made changes but none of its inputs do.
_RECIPES = {"base": "base-2", "pause": "pause-2", "operator": "operator-1", "test": "test-1"}
_ALWAYS_IGNORED = ("**/__pycache__", "**/*.pyc")
_STAGED_MTIME = 946_684_800  # 2000-01-01: staged files' mtime, so buildah's layer cache sees only content
_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_BASE_CONFIG = {"Env": [_PATH, "LANG=C.UTF-8"], "Cmd": ["python3"]}
_PAUSE_CONFIG = {"Env": [_PATH], "Entrypoint": ["/pause"], "User": "65535:65535"}
_SLIM = ("--dpkgopt=path-exclude=/usr/share/doc/*", "--dpkgopt=path-include=/usr/share/doc/*/copyright",
         "--dpkgopt=path-exclude=/usr/share/man/*", "--dpkgopt=path-exclude=/usr/share/info/*",
         "--dpkgopt=path-exclude=/usr/share/locale/*")
_EPOCH = "1970-01-01T00:00:00Z"  # the one-layer images' creation time: the same inputs give the same image
_HEARTBEAT_SECONDS = 60


class ImageError(build.BuildError):
    """An image step failed; carries the failing command and the tail of its output."""


@dataclass(frozen=True)
class Images:
    """The names the node's containerd knows the images by (use them with ``imagePullPolicy: Never``)."""

    pause: str
    operator: str
    test: str


@dataclass(frozen=True)
class _Image:
    name: str  # e.g. airflowtask-operator
    key: str

    @property
    def ref(self) -> str:
        return f"localhost/{self.name}:{self.key}"

    @property
    def archive(self) -> Path:
        return images_dir() / f"{self.name}-{self.key}.tar"


def images_dir() -> Path:
    """Return the folder holding the image archives and buildah's storage."""
    return build.cache_root().parent / "images"


# --- inputs: apt sources, .dockerignore, COPY sources, content keys -------------------------------------------


def debian_sources(files: Iterable[Path] | None = None, suite: str = SUITE) -> list[str]:
    """Return the machine's apt sources of ``suite`` (and its -updates/-security) as one-line ``deb`` entries."""
    wanted = (suite, f"{suite}-updates", f"{suite}-security")
    lines: list[str] = []
    for path in _apt_source_files() if files is None else files:
        parse = _deb822_entries if path.suffix == ".sources" else _one_line_entries
        for types, uris, suites, components in parse(path.read_text()):
            if "deb" in types and "main" in components:
                lines += [f"deb {uri} {name} main" for uri in uris for name in suites if name in wanted]
    lines = list(dict.fromkeys(lines))
    if not any(line.split()[2] == suite for line in lines):
        raise ImageError(f"no Debian {suite} 'main' mirror in the apt sources under {APT_SOURCES} "
                         "(the base image is bootstrapped from the machine's own mirror)")
    return lines


def _apt_source_files() -> list[Path]:
    listed = APT_SOURCES / "sources.list"
    parts = sorted((APT_SOURCES / "sources.list.d").glob("*.list")) + sorted(
        (APT_SOURCES / "sources.list.d").glob("*.sources"))
    return ([listed] if listed.exists() else []) + parts


class _Source(NamedTuple):
    types: list[str]
    uris: list[str]
    suites: list[str]
    components: list[str]


def _deb822_entries(text: str) -> Iterator[_Source]:
    """Yield the enabled stanzas of a deb822 ``.sources`` file."""
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        last = ""
        for line in stanza.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            if line[0].isspace() and last:
                fields[last] += " " + line.strip()
            elif ":" in line:
                last, _, value = line.partition(":")
                last = last.strip().lower()
                fields[last] = value.strip()
        if fields.get("enabled", "yes").lower() == "no":
            continue
        yield _Source(*(fields.get(name, "").split() for name in _Source._fields))


def _one_line_entries(text: str) -> Iterator[_Source]:
    """Yield the entries of a one-line-style ``sources.list`` file."""
    for line in text.splitlines():
        line = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0])  # drop comments and [options]
        words = line.split()
        if len(words) >= 4:
            yield _Source([words[0]], [words[1]], [words[2]], words[3:])


def read_ignore(path: Path) -> list[str]:
    """Return the patterns of a ``.dockerignore`` file (``!`` kept on exceptions), cleaned as Docker does."""
    if not path.exists():
        return []
    patterns = []
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        body = posixpath.normpath(line[1:].strip() if negate else line).lstrip("/")
        patterns.append(("!" if negate else "") + body)
    return patterns


@cache
def _pattern(pattern: str) -> re.Pattern[str]:
    """Compile a .dockerignore pattern; it also matches everything below a matching folder."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
            continue
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            continue
        char = pattern[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[" and "]" in pattern[i + 1:]:
            end = pattern.index("]", i + 1)
            body = pattern[i + 1:end]
            out.append("[" + ("^" + body[1:] if body.startswith("!") else body) + "]")
            i = end
        elif char == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out) + r"(?:/.*)?\Z")


def is_ignored(path: str, patterns: Sequence[str]) -> bool:
    """True when ``path`` (relative, with ``/``) is excluded by ``patterns``: the last matching pattern wins."""
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        if _pattern(pattern.removeprefix("!")).match(path):
            ignored = not negate
    return ignored


def copy_sources(containerfile: Path) -> list[str]:
    """Return the context paths (globs allowed) that the COPY and ADD instructions of ``containerfile`` read."""
    sources = []
    for instruction in _instructions(containerfile.read_text()):
        keyword, rest = _first_word(instruction)
        if keyword.upper() not in ("COPY", "ADD"):
            continue
        flags = []
        while rest.startswith("--"):
            flag, rest = _first_word(rest)
            flags.append(flag)
        if any(flag.startswith("--from=") for flag in flags):
            continue
        paths = json.loads(rest) if rest.startswith("[") else shlex.split(rest)
        sources += [path for path in paths[:-1] if "://" not in path]
    return sources


def _first_word(text: str) -> tuple[str, str]:
    parts = text.split(None, 1)
    return (parts[0], parts[1].strip()) if len(parts) == 2 else (text.strip(), "")


def _instructions(text: str) -> Iterator[str]:
    """Yield a Containerfile's instructions with continuation lines joined."""
    current = ""
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("#") or not (current or stripped):
            continue
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        yield current + stripped
        current = ""
    if current:
        yield current


def context_files(root: Path, sources: Iterable[str], ignore: Sequence[str]) -> list[str]:
    """Return the files (relative, sorted) under ``root`` that ``sources`` name and ``ignore`` does not exclude."""
    found: set[Path] = set()
    for source in sources:
        clean = posixpath.normpath(source).lstrip("/")
        matches = root.glob(clean) if any(c in clean for c in "*?[") else [root / clean]
        for match in matches:
            if match.is_dir():
                found.update(path for path in match.rglob("*") if path.is_file())
            elif match.is_file():
                found.add(match)
    relative = sorted(path.relative_to(root).as_posix() for path in found)
    return [path for path in relative if not is_ignored(path, ignore)]


def content_key(parts: Iterable[str], root: Path | None = None, files: Iterable[str] = ()) -> str:
    """Return a 12-hex key over ``parts`` and the names, exec bits and contents of ``files`` under ``root``."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() + b"\0")
    for name in files:
        path = (root or Path()) / name
        mode = b"x" if os.access(path, os.X_OK) else b"-"
        digest.update(name.encode() + b"\0" + mode + hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()[:12]


def _operator_files() -> list[str]:
    ignore = [*_ALWAYS_IGNORED, *read_ignore(REPO / ".dockerignore")]
    return context_files(REPO, copy_sources(DOCKERFILE), ignore)


def _test_files() -> list[str]:
    # The repository's .dockerignore leaves tests/ out: this image gets its own, staged context.
    return context_files(REPO, copy_sources(TEST_CONTAINERFILE), _ALWAYS_IGNORED)


def _plan(sources: Sequence[str]) -> dict[str, _Image]:
    """The images and their keys, computed from their inputs without building anything."""
    pause_files = context_files(PAUSE_SOURCE, ["*.go", "go.mod"], ())
    pause = _Image("airflowtask-pause", content_key([_RECIPES["pause"]], PAUSE_SOURCE, pause_files))
    base = _Image("airflowtask-base", content_key([_RECIPES["base"], SUITE, *BASE_PACKAGES, *_SLIM, *sources]))
    operator = _Image("airflowtask-operator", content_key(
        [_RECIPES["operator"], base.ref, DOCKERFILE.read_text()], REPO, _operator_files()))
    test = _Image("airflowtask-test", content_key(
        [_RECIPES["test"], operator.ref, TEST_CONTAINERFILE.read_text()], REPO, _test_files()))
    return {"pause": pause, "base": base, "operator": operator, "test": test}


def image_names() -> Images:
    """Return the names :func:`ensure_images` gives the images, without building (e.g. for containerd's config)."""
    plan = _plan(debian_sources())
    return Images(pause=plan["pause"].ref, operator=plan["operator"].ref, test=plan["test"].ref)


# --- running commands --------------------------------------------------------------------------------------


def _run(cmd: Sequence[str], label: str, log: Log, *, env: Mapping[str, str] | None = None,
         cwd: Path | None = None) -> str:
    """Run ``cmd`` (stdout and stderr together), logging a heartbeat while it runs; return its output."""
    started = time.monotonic()
    with tempfile.TemporaryFile("w+") as output:
        try:
            proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=output,
                                    stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as error:
            raise ImageError(f"{label}: cannot run {cmd[0]}: {error}", cmd) from None
        try:
            while True:
                try:
                    proc.wait(timeout=_HEARTBEAT_SECONDS)
                    break
                except subprocess.TimeoutExpired:
                    log(f"{label}: running, {_elapsed(started)}")
        except BaseException:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        output.seek(0)
        text = output.read()
    if proc.returncode != 0:
        raise ImageError(f"{label} failed (exit {proc.returncode})", cmd, text)
    return text


def _succeeds(cmd: Sequence[str]) -> bool:
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, check=False).returncode == 0


def _elapsed(started: float) -> str:
    seconds = time.monotonic() - started
    return f"{seconds:.1f}s" if seconds < 60 else f"{int(seconds) // 60}m{int(seconds) % 60:02d}s"


@contextmanager
def _step(label: str, log: Log) -> Iterator[None]:
    started = time.monotonic()
    yield
    log(f"{label} in {_elapsed(started)}")


@contextmanager
def _lock(path: Path) -> Iterator[None]:
    """Hold an exclusive file lock so concurrent callers build and import only once."""
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file is closed
        yield


@contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; it becomes ``path`` only if the block succeeds."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# --- one-layer images written directly (base, pause) -------------------------------------------------------


def _architecture() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def write_docker_archive(archive: Path, ref: str, layer: Path, config: Mapping[str, object], made_by: str) -> None:
    """Write a one-layer image (an uncompressed layer tarball plus its run config) in ``docker save`` format."""
    diff_id = _file_sha256(layer)
    image_config = {"architecture": _architecture(), "os": "linux", "config": dict(config), "created": _EPOCH,
                    "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]},
                    "history": [{"created": _EPOCH, "created_by": made_by}]}  # builds on top need one per layer
    config_bytes = json.dumps(image_config, sort_keys=True).encode()
    config_name = f"{hashlib.sha256(config_bytes).hexdigest()}.json"
    manifest = [{"Config": config_name, "RepoTags": [ref], "Layers": [f"{diff_id}/layer.tar"]}]
    with _atomic(archive) as tmp, tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tar:
        _add_bytes(tar, config_name, config_bytes)
        tar.add(layer, arcname=f"{diff_id}/layer.tar")
        _add_bytes(tar, "manifest.json", json.dumps(manifest).encode())


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes, mode: int = 0o644) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    tar.addfile(info, io.BytesIO(data))


def _build_base(image: _Image, sources: Sequence[str], work: Path, log: Log) -> None:
    rootfs = work / "rootfs.tar"
    _run(["mmdebstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", "--skip=output/mknod",
          *_SLIM, '--customize-hook=ln -sf /usr/bin/python3 "$1/usr/local/bin/python"',
          SUITE, str(rootfs), *sources], "mmdebstrap", log, env=os.environ | {"TMPDIR": str(work)})
    made_by = f"mmdebstrap {SUITE} {','.join(BASE_PACKAGES)}"
    write_docker_archive(image.archive, image.ref, rootfs, _BASE_CONFIG, made_by)


def _build_pause(image: _Image, go_env: Mapping[str, str] | None, work: Path, log: Log) -> None:
    binary = work / "pause"
    env = {**(go_env or os.environ), "CGO_ENABLED": "0", "GOOS": "linux", "GOWORK": "off"}
    _run(["go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", str(binary), "."],
         "go build pause", log, env=env, cwd=PAUSE_SOURCE)
    layer = work / "layer.tar"
    with tarfile.open(layer, "w") as tar:
        info = tar.gettarinfo(binary, arcname="pause")
        info.mode, info.mtime, info.uid, info.gid, info.uname, info.gname = 0o755, 0, 0, 0, "", ""
        with open(binary, "rb") as handle:
            tar.addfile(info, handle)
    write_docker_archive(image.archive, image.ref, layer, _PAUSE_CONFIG, "go build operator/controlplane/pause")


# --- Containerfile builds (operator, test) -----------------------------------------------------------------


@dataclass(frozen=True)
class _Buildah:
    """buildah with its own storage under the cache and our runc."""

    root: Path
    driver: str
    runtime: Path

    def __call__(self, *args: str) -> list[str]:
        return ["buildah", "--root", str(self.root / "root"), "--runroot", str(self.root / "run"),
                "--storage-driver", self.driver, *args]

    def storage(self, ref: str) -> str:
        return f"containers-storage:[{self.driver}@{self.root / 'root'}+{self.root / 'run'}]{ref}"

    def has(self, ref: str) -> bool:
        return _succeeds(self("inspect", "--type", "image", ref))


def _buildah(runc: Path) -> _Buildah:
    """Use overlay storage when this filesystem supports it, else vfs; the choice is remembered."""
    folder = images_dir() / "buildah"
    marker = folder / "driver"
    if marker.exists():
        driver = marker.read_text().strip()
        return _Buildah(folder / driver, driver, runc)
    for driver in ("overlay", "vfs"):
        candidate = _Buildah(folder / driver, driver, runc)
        if _succeeds(candidate("info")):
            marker.write_text(driver)
            return candidate
    raise ImageError("buildah can use neither overlay nor vfs storage", candidate("info"))


def _load(buildah: _Buildah, image: _Image, log: Log) -> None:
    """Make ``image`` (already archived) available to buildah builds."""
    if not buildah.has(image.ref):
        with _step(f"{image.ref}: loaded into buildah", log):
            _run(["skopeo", "copy", "--insecure-policy", f"docker-archive:{image.archive}",
                  buildah.storage(image.ref)], f"load {image.ref}", log)


def _build_containerfile(buildah: _Buildah, image: _Image, containerfile: Path, files: Sequence[str],
                         build_args: Mapping[str, str], work: Path, log: Log) -> None:
    context = work / "context"
    _stage(REPO, files, context)
    args = [f"--build-arg={name}={value}" for name, value in build_args.items()]
    with _step(f"buildah bud {image.ref}", log):
        _run(buildah("bud", "--layers", "--pull=never", "--network=host", "--isolation=oci",
                     f"--runtime={buildah.runtime}", *_host_trust(), "-f", str(containerfile), *args,
                     "-t", image.ref, str(context)),
             f"buildah bud {image.ref}", log)
    with _step(f"buildah push {image.ref}", log), _atomic(image.archive) as tmp:
        _run(buildah("push", image.ref, f"docker-archive:{tmp}:{image.ref}"), f"buildah push {image.ref}", log)


def _host_trust() -> list[str]:
    """Volumes giving RUN steps the host's CA certificates and pip config (a TLS-inspecting proxy's CA, a mirror).

    They are mounted only while a step runs, so nothing of the host ends up in the image.
    """
    return [f"--volume={path}:{path}:ro" for path in (Path("/etc/ssl/certs"), Path("/etc/pip.conf")) if path.exists()]


def _stage(root: Path, files: Iterable[str], into: Path) -> None:
    """Copy ``files`` from ``root`` into ``into`` with fixed mtimes, as the build context."""
    for name in files:
        target = into / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(root / name, target)
        os.chmod(target, 0o755 if os.access(root / name, os.X_OK) else 0o644)
    for folder, _, names in os.walk(into, topdown=False):
        for path in [*(Path(folder, name) for name in names), Path(folder)]:
            os.utime(path, (_STAGED_MTIME, _STAGED_MTIME))


# --- orchestration -----------------------------------------------------------------------------------------


def _ensure(image: _Image, make: Callable[[Path], None], log: Log) -> None:
    """Run ``make(workdir)`` unless the image's archive is cached; then drop the archives of older keys."""
    if image.archive.exists():
        log(f"{image.ref}: cached")
        return
    with _step(f"{image.ref}: built", log), tempfile.TemporaryDirectory(prefix=".work-", dir=images_dir()) as work:
        make(Path(work))
    for stale in images_dir().glob(f"{image.name}-*.tar"):
        if re.fullmatch(rf"{re.escape(image.name)}-[0-9a-f]{{12}}\.tar", stale.name) and stale != image.archive:
            stale.unlink()


def image_archives(*, runc: Path, go_env: Mapping[str, str] | None = None, log: Log) -> dict[str, Path]:
    """Build what is missing; return the pause, operator and test images' names -> their docker archives."""
    if not DOCKERFILE.exists() or not TEST_CONTAINERFILE.exists():
        raise ImageError(f"the image builds need a source checkout (no {DOCKERFILE} or {TEST_CONTAINERFILE})")
    host.ensure_packages(host.IMAGE_PACKAGES, log)
    images_dir().mkdir(parents=True, exist_ok=True)
    sources = debian_sources()
    with _lock(images_dir() / ".lock"):
        for leftover in images_dir().glob(".work-*"):  # left by a killed build; we hold the lock
            shutil.rmtree(leftover, ignore_errors=True)
        for leftover in images_dir().glob(".*.tmp"):
            leftover.unlink()
        plan = _plan(sources)
        pause, base, operator, test = plan["pause"], plan["base"], plan["operator"], plan["test"]
        _ensure(pause, lambda work: _build_pause(pause, go_env, work, log), log)
        if operator.archive.exists() and test.archive.exists():
            log(f"{operator.ref}, {test.ref}: cached")
        else:
            buildah = _buildah(runc)

            def make_operator(work: Path) -> None:
                _ensure(base, lambda base_work: _build_base(base, sources, base_work, log), log)
                _load(buildah, base, log)
                _build_containerfile(buildah, operator, DOCKERFILE, _operator_files(),
                                     {"PYTHON_IMAGE": base.ref}, work, log)

            def make_test(work: Path) -> None:
                _load(buildah, operator, log)
                _build_containerfile(buildah, test, TEST_CONTAINERFILE, _test_files(),
                                     {"OPERATOR_IMAGE": operator.ref}, work, log)

            _ensure(operator, make_operator, log)
            _ensure(test, make_test, log)
        return {image.ref: image.archive for image in (pause, operator, test)}


def _containerd_images(ctr: Path, address: str) -> set[str]:
    """Return the images of namespace k8s.io whose content is complete and unpacked."""
    output = _run([str(ctr), "--address", address, "-n", NAMESPACE, "images", "check"], "ctr images check", _quiet)
    present = set()
    for line in output.splitlines()[1:]:
        words = line.split()
        if len(words) >= 2 and "complete" in line and words[-1] == "true":
            present.add(words[0])
    return present


def _quiet(_: str) -> None:
    pass


def import_archives(archives: Mapping[str, Path], *, ctr: Path, address: str, log: Log) -> None:
    """Import each archive into containerd (namespace k8s.io, unpacked for overlayfs) unless it is there."""
    with _lock(images_dir() / ".lock"):
        present = _containerd_images(ctr, address)
        for ref, archive in archives.items():
            if ref in present:
                log(f"{ref}: already in containerd")
                continue
            with _step(f"{ref}: imported into containerd", log):
                _run([str(ctr), "--address", address, "-n", NAMESPACE, "images", "import",
                      f"--snapshotter={SNAPSHOTTER}", str(archive)], f"ctr images import {archive.name}", log)
        missing = set(archives) - _containerd_images(ctr, address)
        if missing:
            raise ImageError(f"containerd at {address} lacks {', '.join(sorted(missing))} after importing them")


def ensure_images(*, ctr: Path, address: str, runc: Path, go_env: dict[str, str] | None = None,
                  log: Log) -> Images:
    """Build what is missing (cached by content), import into containerd namespace k8s.io at `address` with `ctr`,
    return the names."""
    with _step("images ready", log):
        archives = image_archives(runc=runc, go_env=go_env, log=log)
        import_archives(archives, ctr=ctr, address=address, log=log)
    pause, operator, test = archives
    return Images(pause=pause, operator=operator, test=test)
