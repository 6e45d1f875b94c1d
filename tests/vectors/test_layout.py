"""The offsets, sizes and dtypes that bulk code uses on vector files (format/vector.py's
derived constants, read by vectors/codec.py and vectors/files.py) agree with the construct
declarations on real bytes: a change to a declaration that left a copy behind fails here."""

from __future__ import annotations

import numpy as np
import pytest
from construct import Container, Int32ul, Struct
from crc32c import crc32c

from vexfs_tools.format import constants as C
from vexfs_tools.format import vector as V
from vexfs_tools.vectors import codec


def encoded(element_type: int, dims: int = 100) -> bytes:
    """A vector file's bytes with two checksum chunks (the second short)."""
    rng = np.random.default_rng(element_type)
    rows = (codec.CHUNK_SIZE * 3 // 2) // codec.row_bytes(dims, element_type)
    if element_type == V.ELEMENT_BINARY:
        vectors = rng.integers(0, 256, (rows, -(-dims // 8)), dtype=np.uint8)
    else:
        vectors = (rng.standard_normal((rows, dims)) * 50).astype(V.ELEMENT_DTYPES[element_type])
    ids = rng.choice(1 << 40, rows, replace=False).astype(np.uint64)
    metric = V.METRIC_HAMMING if element_type == V.ELEMENT_BINARY else V.METRIC_DOT
    size, chunks = codec.encode(vectors, ids, element_type=element_type, metric=metric, dimensions=dims)
    content = b"".join(chunks)
    assert len(content) == size
    return content


def test_every_header_field_is_where_field_span_says():
    head = V.VectorHeader.parse(encoded(V.ELEMENT_FLOAT32))
    for sub in V.VectorHeader.subcons:
        offset, size = V.field_span(V.VectorHeader, sub.name)
        raw = V.VectorHeader.build(head)
        assert raw[offset:offset + size] == sub.build(head[sub.name]), sub.name
        assert V.parse_field(V.VectorHeader, sub.name, raw) == head[sub.name]
    assert V.VECTOR_HEADER_FIXED == V.VectorHeader.sizeof() == sum(s.sizeof() for s in V.VectorHeader.subcons)


@pytest.mark.parametrize("element_type", sorted(V.ELEMENT_FORMATS))
def test_bulk_reads_equal_construct_parses(element_type):
    content = encoded(element_type)
    head = V.VectorHeader.parse(content)
    info = codec.decode_header(content, len(content))
    # The header's size, as VectorFile.open reads it before the rest.
    offset, size = V.HEADER_BLOCKS_SPAN
    assert int.from_bytes(content[offset:offset + size], "little") == head.header_blocks
    # The checksum table, read by numpy at CHUNK_CHECKSUMS_OFFSET.
    table = V.ChunkChecksums.parse(content[V.VECTOR_HEADER_FIXED:], chunk_count=head.chunk_count)
    assert head.chunk_count > 1 and list(info.chunk_checksums) == list(table)
    bulk = np.frombuffer(content, V.CHUNK_CHECKSUM_DTYPE, count=head.chunk_count, offset=V.CHUNK_CHECKSUMS_OFFSET)
    assert bulk.tolist() == list(table)
    # The header checksum: crc32c of the header blocks with its field zeroed.
    header = bytearray(content[:head.header_blocks * C.BLOCK_SIZE])
    start, size = V.HEADER_CHECKSUM_SPAN
    header[start:start + size] = bytes(size)
    assert crc32c(bytes(header)) == head.header_checksum
    rebuilt = V.VectorHeader.build(Container(head, header_checksum=0))
    assert bytes(header[:V.VECTOR_HEADER_FIXED]) == rebuilt
    # The ids and the rows, read by numpy with the derived dtypes.
    ids = V.VectorIds.parse(content[head.ids_offset:], vector_count=head.info.vector_count)
    bulk_ids = np.frombuffer(content, codec.ID_DTYPE, count=info.count, offset=info.ids_offset)
    assert bulk_ids.tolist() == list(ids)
    # The header's copy ends the file, at the first block boundary after the ids.
    assert head.flags == V.FLAG_HEADER_COPY and info.copy_offset == codec.align(info.ids_offset + info.ids_bytes)
    assert len(content) == info.copy_offset + info.header_bytes
    assert content[info.copy_offset:] == content[:info.header_bytes]
    row = V.ELEMENT_FORMATS[element_type][head.row_bytes // V.ELEMENT_DTYPES[element_type].itemsize]
    first = row.parse(content[info.data_offset:])
    bulk_row = np.frombuffer(content, info.numpy_type, count=len(first), offset=info.data_offset)
    np.testing.assert_array_equal(bulk_row, np.array(first, info.numpy_type))


def test_a_moved_field_moves_its_span():
    """field_span reads the declaration: a field inserted before another moves it."""
    longer = Struct(*V.VectorHeader.subcons[:-1], "extra" / Int32ul, V.VectorHeader.subcons[-1])
    assert V.field_span(longer, "header_checksum") == (V.HEADER_CHECKSUM_SPAN[0] + 4, 4)
