"""Vector files: the header of a regular file holding a collection of vectors
(docs/FORMAT.md, "Vector files").

The header embeds, at byte 16, the kernel's 40-byte vexfs_vector_file_info record exactly as
its SET_VECTOR_META ioctl (0x40285601) defines it. Every offset, size and numpy dtype that
bulk code uses (the header checksum's place, the checksum table, the id array, the element
types) is derived below from these declarations, never written by hand elsewhere.
"""

from construct import (Array, Bytes, Const, Float16l, Float32l, Int8sl, Int8ul, Int16ul, Int32ul, Int64ul,
                       Struct, this)

from .dtypes import dtype_of
from .offsets import field_span

VECTOR_MAGIC = b"VXVECTOR"
VECTOR_VERSION = 1

# Kernel codes (vexfs_vector_file_info).
ELEMENT_FLOAT32, ELEMENT_FLOAT16, ELEMENT_INT8, ELEMENT_BINARY = 1, 2, 3, 4
STORAGE_DENSE, STORAGE_SPARSE, STORAGE_COMPRESSED = 0, 1, 2
COMPRESSION_NONE, COMPRESSION_LZ4, COMPRESSION_ZSTD = 0, 1, 2
# Search types: the kernel's EUCLIDEAN 0, COSINE 1, DOT_PRODUCT 2; HAMMING is ours.
METRIC_L2, METRIC_COSINE, METRIC_DOT, METRIC_HAMMING = 0, 1, 2, 3
MIN_DIMENSIONS, MAX_DIMENSIONS = 1, 65536
# Header flags. HEADER_COPY: a byte-for-byte copy of the header blocks ends the file, at the
# first block boundary after the ids (fsck restores a damaged header from it).
FLAG_HEADER_COPY = 0x1
KNOWN_FLAGS = FLAG_HEADER_COPY

# struct vexfs_vector_file_info, 40 bytes (the kernel's ioctl record).
VectorFileInfo = Struct(
    "dimensions" / Int32ul,
    "element_type" / Int32ul,
    "vector_count" / Int32ul,
    "storage_format" / Int32ul,
    "data_offset" / Int64ul,
    "index_offset" / Int64ul,
    "compression_type" / Int32ul,
    "alignment_bytes" / Int32ul,
)

VectorHeader = Struct(
    "magic" / Const(VECTOR_MAGIC),
    "version" / Int16ul,
    "header_blocks" / Int16ul * "header size in 4096-byte blocks; data starts after it",
    "flags" / Int32ul * "FLAG_HEADER_COPY (0x1): a copy of the header ends the file",
    "info" / VectorFileInfo,
    "default_metric" / Int32ul,
    "row_bytes" / Int32ul * "bytes per vector: dims * element size, or ceil(dims / 8) for binary",
    "ids_offset" / Int64ul * "byte offset of vector_count u64 ids",
    "data_bytes" / Int64ul * "vector_count * row_bytes",
    "chunk_size" / Int32ul * "bytes of vector data per checksum",
    "chunk_count" / Int32ul,
    "ids_checksum" / Int32ul * "crc32c of the id array",
    "reserved" / Bytes(32),
    "header_checksum" / Int32ul * "crc32c of the header blocks with this field zero",
)

# Right after the fixed header: chunk_count u32 crc32c values, one per chunk_size bytes of
# vector data (the last chunk may be short); the rest of the header blocks is zero.
ChunkChecksums = Array(this.chunk_count, Int32ul)

# At ids_offset: one u64 id per vector, unique within the file.
VectorIds = Array(this.vector_count, Int64ul)

# One component of a row, by element type (binary: a byte of 8 packed bits, least
# significant bit first).
ELEMENT_FORMATS = {ELEMENT_FLOAT32: Float32l, ELEMENT_FLOAT16: Float16l, ELEMENT_INT8: Int8sl,
                   ELEMENT_BINARY: Int8ul}


def parse_field(declaration: Struct, name: str, data: bytes):
    """The value of one field, parsed out of the start of a record by its own declaration
    (the rest of the record may be missing or invalid)."""
    offset, size = field_span(declaration, name)
    sub = next(s for s in declaration.subcons if s.name == name)
    return sub.parse(data[offset:offset + size])


def _dtype_of_element(con):
    """The numpy dtype of one element of the declared type."""
    return dtype_of(Struct("value" / con)).fields["value"][0]


VECTOR_HEADER_FIXED = VectorHeader.sizeof()  # 128 bytes: the checksum table starts here
CHUNK_CHECKSUMS_OFFSET = VECTOR_HEADER_FIXED
HEADER_BLOCKS_SPAN = field_span(VectorHeader, "header_blocks")
HEADER_CHECKSUM_SPAN = field_span(VectorHeader, "header_checksum")
CHUNK_CHECKSUM_DTYPE = _dtype_of_element(ChunkChecksums.subcon)
VECTOR_ID_DTYPE = _dtype_of_element(VectorIds.subcon)
ELEMENT_DTYPES = {code: _dtype_of_element(con) for code, con in ELEMENT_FORMATS.items()}
