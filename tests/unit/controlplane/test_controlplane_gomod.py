"""Deriving the wrapper go.mod from an upstream go.mod, and the version pairing."""

from __future__ import annotations

import pytest
from airflowtask.controlplane import gomod
from airflowtask.controlplane.build import BuildError
from airflowtask.controlplane.versions import staging_version

UPSTREAM = """\
// This is a generated file. Do not edit directly.

module k8s.io/kubernetes

go 1.26.0

godebug default=go1.26

require (
	github.com/spf13/cobra v1.10.2 // indirect
	k8s.io/api v0.0.0
	k8s.io/client-go v0.0.0
)

require go.etcd.io/etcd/api/v3 v3.6.16

replace (
	k8s.io/api => ./staging/src/k8s.io/api
	k8s.io/client-go => ./staging/src/k8s.io/client-go // the client
)

replace k8s.io/forbidden => ./FORBIDDEN_DEPENDENCY

replace github.com/old/thing v1.0.0 => github.com/new/thing v1.2.3
"""


def test_parse_reads_module_go_godebug_requires_and_replaces() -> None:
    parsed = gomod.parse(UPSTREAM)
    assert parsed.module == "k8s.io/kubernetes"
    assert parsed.go == "1.26.0"
    assert parsed.godebug == ("default=go1.26",)
    assert parsed.requires == {
        "github.com/spf13/cobra", "k8s.io/api", "k8s.io/client-go", "go.etcd.io/etcd/api/v3"
    }
    assert [r.render() for r in parsed.replaces] == [
        "k8s.io/api => ./staging/src/k8s.io/api",
        "k8s.io/client-go => ./staging/src/k8s.io/client-go",
        "k8s.io/forbidden => ./FORBIDDEN_DEPENDENCY",
        "github.com/old/thing v1.0.0 => github.com/new/thing v1.2.3",
    ]


def test_wrapper_pins_required_siblings_keeps_module_replaces_and_drops_other_folders() -> None:
    text = gomod.wrapper_gomod(gomod.parse(UPSTREAM), "v1.37.2", "v0.37.2", module="wrapper")
    assert text == """\
module wrapper

go 1.26.0

godebug default=go1.26

require k8s.io/kubernetes v1.37.2

replace (
\tk8s.io/api => k8s.io/api v0.37.2
\tk8s.io/client-go => k8s.io/client-go v0.37.2
\tgithub.com/old/thing v1.0.0 => github.com/new/thing v1.2.3
)
"""


def test_wrapper_without_godebug_has_no_godebug_line() -> None:
    text = gomod.wrapper_gomod(gomod.parse("module m/v3\ngo 1.26.0\n"), "v3.6.16", "v3.6.16", module="w")
    assert "godebug" not in text
    assert "require m/v3 v3.6.16" in text


@pytest.mark.parametrize("text", ["go 1.26.0\n", "module m\n", "module m\ngo 1.26\nreplace a b\n"])
def test_parse_rejects_incomplete_or_malformed_go_mod(text: str) -> None:
    with pytest.raises(ValueError):
        gomod.parse(text)


def test_staging_version_pairs_with_kubernetes_release() -> None:
    assert staging_version("v1.37.2") == "v0.37.2"


def test_build_error_shows_command_and_output_tail() -> None:
    output = "\n".join(f"line {i}" for i in range(100))
    message = str(BuildError("build etcd failed (exit 1)", ["go", "build", "-o", "out dir"], output))
    assert message.splitlines()[:2] == ["build etcd failed (exit 1)", "command: go build -o 'out dir'"]
    assert message.endswith("line 99") and "line 59" not in message
