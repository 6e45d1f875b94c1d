"""Shared by the tests of the writers (volume/namespace.py, the offline commands, the
mount): both layouts as a fixture, a fresh image of each, and the fsck that ends each test.
Test modules import the fixtures by name."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run


@pytest.fixture(params=["kernel", "extended"])
def layout(request):
    return request.param


def layout_args(layout: str) -> tuple[str, ...]:
    """mkfs.vexfs arguments for a layout."""
    return ("--compat", "kernel") if layout == "kernel" else ()


@pytest.fixture
def image(fresh_image, layout):
    return fresh_image("16M", *layout_args(layout))


def fsck_clean(image: Path) -> None:
    result = run("fsck.vexfs", "-fn", image)
    assert result.returncode == 0, result.stdout + result.stderr
