"""Read a go.mod and write the wrapper module that builds an upstream ``main`` package from it.

Upstream modules (``k8s.io/kubernetes``, ``go.etcd.io/etcd/server/v3``) point their sibling
modules at local folders with ``replace`` directives. Replaces of a dependency are ignored by Go,
so a wrapper module repeats them, pointing each sibling at its published version instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Replace:
    """One ``replace old [v] => new [v]`` directive."""

    old: str
    old_version: str | None
    new: str
    new_version: str | None

    @property
    def is_local(self) -> bool:
        """True when the target is a folder path rather than a module."""
        return self.new.startswith(("./", "../", "/"))

    def render(self) -> str:
        """Return the directive's body as go.mod writes it."""
        left = f"{self.old} {self.old_version}" if self.old_version else self.old
        right = f"{self.new} {self.new_version}" if self.new_version else self.new
        return f"{left} => {right}"


@dataclass(frozen=True)
class GoMod:
    """The parts of a go.mod a wrapper module needs."""

    module: str
    go: str
    godebug: tuple[str, ...] = ()
    requires: frozenset[str] = frozenset()
    replaces: tuple[Replace, ...] = field(default_factory=tuple)


def _directives(text: str) -> list[tuple[str, str]]:
    """Split go.mod text into ``(verb, arguments)`` pairs, expanding ``verb ( ... )`` blocks."""
    result: list[tuple[str, str]] = []
    block: str | None = None
    for raw in text.splitlines():
        line = raw.split("//", 1)[0].strip()
        if not line:
            continue
        if block is not None:
            if line == ")":
                block = None
            else:
                result.append((block, line))
            continue
        verb, _, rest = line.partition(" ")
        rest = rest.strip()
        if rest == "(":
            block = verb
        else:
            result.append((verb, rest))
    return result


def _parse_replace(args: str) -> Replace:
    left, sep, right = args.partition("=>")
    if not sep:
        raise ValueError(f"malformed replace directive: {args!r}")
    old = left.split()
    new = right.split()
    if len(old) not in (1, 2) or len(new) not in (1, 2):
        raise ValueError(f"malformed replace directive: {args!r}")
    return Replace(old[0], old[1] if len(old) == 2 else None, new[0], new[1] if len(new) == 2 else None)


def parse(text: str) -> GoMod:
    """Parse the ``module``, ``go``, ``godebug``, ``require`` and ``replace`` directives of a go.mod."""
    module = go = ""
    godebug: list[str] = []
    requires: set[str] = set()
    replaces: list[Replace] = []
    for verb, args in _directives(text):
        if verb == "module":
            module = args.strip('"')
        elif verb == "go":
            go = args
        elif verb == "godebug":
            godebug.append(args)
        elif verb == "require":
            requires.add(args.split()[0])
        elif verb == "replace":
            replaces.append(_parse_replace(args))
    if not module or not go:
        raise ValueError("go.mod has no module or go directive")
    return GoMod(module, go, tuple(godebug), frozenset(requires), tuple(replaces))


def pinned_replaces(upstream: GoMod, sibling_version: str) -> list[Replace]:
    """Map the upstream's replaces onto published modules.

    A folder replace of a required module (a sibling in the same repository) becomes
    ``M => M <sibling_version>``; other folder replaces (guards such as etcd's
    ``=> ./FORBIDDEN_DEPENDENCY``) name folders the wrapper lacks and are dropped;
    module replaces are kept as they are.
    """
    pinned = []
    for r in upstream.replaces:
        if not r.is_local:
            pinned.append(r)
        elif r.old in upstream.requires:
            pinned.append(Replace(r.old, None, r.old, sibling_version))
    return pinned


def wrapper_gomod(upstream: GoMod, version: str, sibling_version: str, module: str) -> str:
    """Render a wrapper go.mod that requires ``upstream`` at ``version`` with its siblings pinned."""
    lines = [f"module {module}", "", f"go {upstream.go}", ""]
    if upstream.godebug:
        lines += [f"godebug {entry}" for entry in upstream.godebug] + [""]
    lines += [f"require {upstream.module} {version}", "", "replace ("]
    lines += [f"\t{r.render()}" for r in pinned_replaces(upstream, sibling_version)]
    lines += [")", ""]
    return "\n".join(lines)
