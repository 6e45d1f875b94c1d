"""Fixtures of the crash tests: a base image with the corpus tree and a vector file."""

from __future__ import annotations

import numpy as np
import pytest

from tests.check.corpus import EPOCH, EXTENDED, MKFS_ENV, make_tree, mkfs_args
from tests.conftest import run

from .crash import NEW, OLD


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """An extended image holding the corpus tree and the vector file /emb.vec; the host
    arrays for the writers."""
    where = tmp_path_factory.mktemp("crash-base")
    make_tree(where / "tree", EXTENDED)
    image = where / "base.img"
    run("mkfs.vexfs", *mkfs_args(EXTENDED, where / "tree", image), env=MKFS_ENV, check=True)
    np.save(where / "old.npy", OLD)
    np.save(where / "new.npy", NEW)
    run("vexfs", "vectors", "add", image, "/emb.vec", "--from", where / "old.npy", check=True)
    return where, image


@pytest.fixture(autouse=True)
def fixed_time(monkeypatch):
    monkeypatch.setenv("SOURCE_DATE_EPOCH", EPOCH)
