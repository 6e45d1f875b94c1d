"""BlockClaims keeps its bits in chunks made on first use: claims, duplicates, ranges and
packed reads across chunk boundaries agree with a plain bit array."""

from __future__ import annotations

import numpy as np

from vexfs_tools.check.state import CLAIM_CHUNK, BlockClaims

BOUNDARY = CLAIM_CHUNK * 8  # the first block of the second chunk


def test_claims_across_chunks_match_a_plain_array():
    blocks = 3 * BOUNDARY + 5
    claims = BlockClaims(blocks)
    picked = np.array([0, 7, 8, BOUNDARY - 1, BOUNDARY, BOUNDARY + 9, blocks - 1])
    claims.claim(picked)
    claims.claim_range(BOUNDARY - 20, 40)  # overlaps three claimed blocks: duplicates
    claims.claim_range(2 * BOUNDARY - 3, 1000)  # whole bytes across a boundary
    assert claims.duplicates == {BOUNDARY - 1, BOUNDARY, BOUNDARY + 9}
    want = np.zeros(blocks, bool)
    want[picked] = True
    want[BOUNDARY - 20:BOUNDARY + 20] = True
    want[2 * BOUNDARY - 3:2 * BOUNDARY + 997] = True
    got = np.unpackbits(claims.packed(0, claims.nbytes), bitorder="little")[:blocks].astype(bool)
    assert (got == want).all()
    assert claims.count() == int(want.sum())
    assert claims.is_claimed(BOUNDARY + 9) and not claims.is_claimed(BOUNDARY + 21)
    claims.change(BOUNDARY + 9, False)
    claims.change(3 * BOUNDARY, True)
    assert not claims.is_claimed(BOUNDARY + 9) and claims.is_claimed(3 * BOUNDARY)
    assert not claims.is_claimed(blocks) and not claims.is_claimed(-1)


def test_an_empty_region_costs_no_chunk():
    claims = BlockClaims(100 * BOUNDARY)
    claims.claim_range(0, 1000)
    claims.claim([100 * BOUNDARY - 1])
    assert len(claims._chunks) == 2
    assert not claims.packed(50 * CLAIM_CHUNK, 4096).any()
