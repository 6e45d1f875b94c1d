"""Hostile images: fsck.vexfs and the read-only tools on damaged metadata and on noise.

Every case runs fsck -n, dump / ls -l / stat 1, fsck -y, fsck -n again, and the tools once
more (fuzzlib.check_image). Each run must end (60 s), exit with a code fsck(8) allows
(-n: 0, 4, 8; -y: 0, 1, 4, 5, 8; the tools: 0 or 1), print no traceback nor "internal error",
and -n must not change a byte. fsck runs in-process (run_check: a VexfsError is the exit-8
path, any other exception a bug), the tools through click's runner; a few cases go through
the installed CLIs as subprocesses.

Whether -y leaves a file system that the next -n finds clean is a separate test
(test_repair_leaves_a_clean_file_system), so that "ends and never crashes" stands alone.

The cases come from hypothesis (derandomized, bounded) and from the soak's seeded generator;
tests/fuzz/soak.py runs thousands of the latter.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, Phase, assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from .fuzzlib import (BASE_NAMES, REGIONS, Mutation, apply, check_image, get_base,  # noqa: E402
                      random_mutation, repro_snippet)

# Shrinking a failure to a minimal case can take minutes; CI reports the case as found (with
# its repro) unless VEXFS_FUZZ_SHRINK=1 asks for the minimal one.
SHRINK = os.environ.get("VEXFS_FUZZ_SHRINK") == "1"
SETTINGS = dict(derandomize=True, database=None, deadline=None, print_blob=False,
                phases=(Phase.explicit, Phase.generate) + ((Phase.shrink,) if SHRINK else ()),
                suppress_health_check=list(HealthCheck))
METADATA_EXAMPLES = 150
RANDOM_IMAGE_EXAMPLES = 30
REPAIR_SEEDS = range(80)
CLI_SEEDS = [0, 2, 3, 5]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


@pytest.fixture(scope="module")
def bases(workdir):
    found = {name: base for name in BASE_NAMES if (base := get_base(name, workdir / "bases")) is not None}
    assert "ext-tree" in found and "kern-tree" in found
    return found


def explain(m: Mutation, failures: list[str]) -> str:
    return (f"{m!r}\n" + "\n\n".join(failures)
            + "\n\nrepro (from /work/main):\n" + repro_snippet(m))


def assert_no_failures(m: Mutation, outcome) -> None:
    if outcome.failures:
        raise AssertionError(explain(m, outcome.failures))


def run_case(bases, workdir, m: Mutation, **kwargs):
    image = workdir / "case.img"
    image.write_bytes(apply(bases[m.base], m))
    return check_image(image, **kwargs)


# --- the harness itself ------------------------------------------------------------------------


def test_base_images_are_clean(bases, workdir):
    """Unmutated, every base but the real kernel's (orphaned directory blocks, FORMAT.md 9)
    checks clean; otherwise a finding below could be the base's, not the mutation's."""
    for name, base in bases.items():
        outcome = run_case(bases, workdir, Mutation(name, "metadata", "flip", ()))
        assert not outcome.failures, (name, outcome.failures)
        expected = (4, 1, 0) if name == "kernel-tree" else (0, 0, 0)
        assert outcome.codes == expected, (name, outcome.codes, [r.output for r in outcome.runs])


def test_mutations_land_in_their_region_and_reseal_is_exact(bases):
    """A flip changes one byte, inside its region; resealing an untouched image rebuilds
    every checksum as mkfs wrote it (so a resealed mutation differs only where it edited)."""
    for name, base in bases.items():
        assert apply(base, Mutation(name, "metadata", "flip", (), reseal=True)) == base.data, name
        for region, ranges in base.regions.items():
            m = Mutation(name, region, "flip", ((123457, 3),))
            changed = np.flatnonzero(np.frombuffer(apply(base, m), np.uint8)
                                     != np.frombuffer(base.data, np.uint8)).tolist()
            assert len(changed) == 1, (name, region)
            assert any(start <= changed[0] < start + length for start, length in ranges), (name, region)
            assert apply(base, m) == apply(base, m)


# --- ends and never crashes --------------------------------------------------------------------

EDITS = st.lists(st.tuples(st.integers(0, 2**24 - 1), st.integers(0, 2**16 - 1)),
                 min_size=1, max_size=16).map(tuple)


def metadata_mutations():
    base = st.sampled_from(BASE_NAMES)
    edited = st.builds(Mutation, base=base, region=st.sampled_from(REGIONS),
                       kind=st.sampled_from(["flip", "bytes", "u32", "u16"]), edits=EDITS,
                       reseal=st.booleans())
    noise = st.builds(Mutation, base=base, region=st.sampled_from(REGIONS),
                      kind=st.just("random_metadata"), seed=st.integers(0, 2**32 - 1),
                      reseal=st.booleans())
    return st.one_of(edited, edited, edited, noise)


@settings(max_examples=METADATA_EXAMPLES, **SETTINGS)
@given(m=metadata_mutations())
def test_metadata_damage_ends_without_crashing(bases, workdir, m):
    """Bit flips, random bytes and edge-case integers in the superblock, bitmap, inode
    table, directory and indirect blocks of fresh and populated images of both layouts,
    with and without resealed checksums."""
    assume(m.base in bases)  # the real kernel's image needs shared/
    outcome = run_case(bases, workdir, m)
    assert_no_failures(m, outcome)


# Cases worth trying every time (found by the tests above or by soak.py), each on its own so
# that one of them failing does not keep hypothesis from searching further.
KNOWN_CASES = {
    # one bit of a name in the root directory: the name is no longer UTF-8 (vexfs ls -l)
    "non-utf8-name": Mutation("ext-tree", "directory", "flip", ((32, 7),)),
    # the name 'lost+found' in / begins with 0x80 00 00 00, and '.' of /lost+found is cleared:
    # fsck names that directory by a path that is not UTF-8 in a message
    "non-utf8-name-in-fsck-message": Mutation("ext-tree", "directory", "u32", ((132, 10), (4096, 0))),
    # a directory entry naming a free inode, of the kernel layout
    "entry-names-free-inode": Mutation("kern-tree", "inode_table", "u16", ((112 * 3, 0),)),
    # the whole inode table of the populated extended image as noise, checksums resealed
    "inode-table-noise": Mutation("ext-tree", "inode_table", "random_metadata", seed=1, reseal=True),
    # the kernel layout's bitmap as noise
    "bitmap-noise": Mutation("kern-tree", "bitmap", "random_metadata", seed=1),
    # every directory block of the real kernel image as noise
    "kernel-directories-noise": Mutation("kernel-tree", "directory", "random_metadata", seed=1),
}


@pytest.mark.parametrize("name", KNOWN_CASES)
def test_known_hostile_cases(bases, workdir, name):
    m = KNOWN_CASES[name]
    if m.base not in bases:
        pytest.skip(f"{m.base}: base image not available here (shared/ missing)")
    assert_no_failures(m, run_case(bases, workdir, m))


@settings(max_examples=RANDOM_IMAGE_EXAMPLES, **SETTINGS)
@given(m=st.one_of(
    st.builds(Mutation, base=st.just("ext-fresh"), region=st.just(""), kind=st.just("random_image"),
              seed=st.integers(0, 2**32 - 1),
              size=st.sampled_from([0, 1, 1023, 1024, 4096, 4096 * 100, 4096 * 256])),
    st.builds(Mutation, base=st.sampled_from(["ext-fresh", "ext-tree", "ext-tree-nocsum", "kern-fresh",
                                              "kern-tree"]),
              region=st.just(""), kind=st.just("random_after_sb"), seed=st.integers(0, 2**32 - 1),
              size=st.sampled_from([0, 0, 0, 4096 * 100]))))
def test_random_images_end_without_crashing(bases, workdir, m):
    """Random bytes as the whole image, and random bytes behind a valid superblock (block 0
    of a real image: the geometry is believed and every table is noise)."""
    outcome = run_case(bases, workdir, m)
    assert_no_failures(m, outcome)


@pytest.mark.parametrize("seed", CLI_SEEDS)
def test_hostile_images_through_the_installed_clis(bases, workdir, seed):
    """The same checks on the real programs (fsck.vexfs, dump.vexfs, vexfs ls / stat) as
    subprocesses, each under a 60 s timeout: exit codes, no traceback, no internal error."""
    m = random_mutation(seed, bases)
    outcome = run_case(bases, workdir, m, subprocesses=True)
    assert_no_failures(m, outcome)


# --- repairs are complete ----------------------------------------------------------------------


def test_repair_leaves_a_clean_file_system(bases, workdir):
    """After fsck -y exited 0 or 1, fsck -n exits 0. Cases that crashed or hung are left to
    the tests above; every case that does not converge is listed."""
    bad = []
    for seed in REPAIR_SEEDS:
        m = random_mutation(seed, bases)
        outcome = run_case(bases, workdir, m, tools=False)
        if outcome.incomplete:
            bad.append(f"seed {seed}: {m!r}\n{outcome.incomplete}")
    if bad:
        raise AssertionError(f"{len(bad)} of {len(REPAIR_SEEDS)} repairs left work for the next -n "
                             "(python tests/fuzz/soak.py --write-case SEED case.img rebuilds one):\n\n"
                             + "\n\n".join(bad))


# --- names that are not UTF-8 ------------------------------------------------------------------


def test_names_that_are_not_utf8(tmp_path):
    """Linux names are bytes: a file named b'caf\\xe9' (Latin-1) is legal, and on a damaged
    image any name can be. Under a UTF-8 locale (stdout encodes strictly) fsck.vexfs and
    vexfs ls must still print, not fail with an internal error."""
    from tests.conftest import tool

    from .fuzzlib import cli_run

    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "ok.txt").write_bytes(b"fine\n")
    with open(bytes(tree) + b"/caf\xe9", "wb") as f:
        f.write(b"x")
    image = tmp_path / "latin1.img"
    made = cli_run(["mkfs.vexfs", "-q", "-s", "1M", "-d", str(tree), str(image)])
    assert made.code == 0 and made.error is None, made.output
    # the file's link count made wrong, so that fsck names it in a message
    from vexfs_tools.volume.volume import Volume

    with Volume.open(str(image), writable=True) as volume:
        inode = volume.resolve(b"/caf\xe9")
        inode.fields.i_links_count = 5
        volume.write_inode(inode.ino, inode.fields)
    assert tool("fsck.vexfs")
    failures = []
    for args in (["vexfs", "ls", str(image), "/"], ["vexfs", "ls", "-l", str(image), "/"],
                 ["fsck.vexfs", "-n", str(image)], ["fsck.vexfs", "-y", str(image)],
                 ["fsck.vexfs", "-n", str(image)]):
        result = cli_run(args)
        expected = {0, 1} if args[0] == "vexfs" else ({0, 1} if "-y" in args else {0, 4})
        if result.error or result.code not in expected:
            failures.append(f"{' '.join(args[:-1])}: exit {result.code}\n{result.output.strip()[-400:]}")
    assert not failures, "\n\n".join(failures)
