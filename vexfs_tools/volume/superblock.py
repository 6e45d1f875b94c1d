"""Reading, checking and writing superblocks (primary at byte 0, backup in its own block)."""

from __future__ import annotations

from dataclasses import dataclass

from construct import Container

from ..errors import BadMagicError, UnsupportedFeatureError
from ..format import constants as C
from ..format import features as F
from ..format.offsets import SUPERBLOCK_CHECKSUM_OFFSET
from ..format.superblock import Superblock
from .checksums import superblock_checksum


def parse(raw: bytes) -> Container:
    return Superblock.parse(raw[:C.SUPERBLOCK_SIZE])


def build(sb: Container, *, with_checksum: bool) -> bytes:
    """The 1024 bytes of `sb`, s_checksum recomputed when the image carries metadata_csum."""
    sb.s_checksum = 0
    raw = bytearray(Superblock.build(sb))
    if with_checksum:
        sb.s_checksum = superblock_checksum(raw)
        raw[SUPERBLOCK_CHECKSUM_OFFSET:] = sb.s_checksum.to_bytes(4, "little")
    return bytes(raw)


def check_magic(sb: Container, where: str) -> None:
    if sb.s_magic != C.MAGIC:
        raise BadMagicError(f"{where}: bad magic number 0x{sb.s_magic:08x} (VexFS has 0x{C.MAGIC:08x}); "
                            "not a VexFS file system")


@dataclass(frozen=True)
class FeatureSet:
    """The three feature words of a superblock, asked by feature name."""
    compat: int
    ro_compat: int
    incompat: int

    @classmethod
    def of(cls, sb: Container) -> "FeatureSet":
        return cls(sb.s_feature_compat, sb.s_feature_ro_compat, sb.s_feature_incompat)

    @classmethod
    def from_names(cls, names) -> "FeatureSet":
        words = {F.COMPAT: 0, F.RO_COMPAT: 0, F.INCOMPAT: 0}
        for name in names:
            feature = F.BY_NAME[name]
            words[feature.word] |= feature.bit
        return cls(words[F.COMPAT], words[F.RO_COMPAT], words[F.INCOMPAT])

    def word(self, word: str) -> int:
        return {F.COMPAT: self.compat, F.RO_COMPAT: self.ro_compat, F.INCOMPAT: self.incompat}[word]

    def has(self, name: str) -> bool:
        feature = F.BY_NAME[name]
        return bool(self.word(feature.word) & feature.bit)

    def names(self) -> list[str]:
        names = [f.name for f in F.FEATURES if self.word(f.word) & f.bit]
        for word in (F.COMPAT, F.RO_COMPAT, F.INCOMPAT):
            unknown = self.word(word) & ~F.KNOWN_MASK[word]
            names += [f"{word}_0x{1 << b:x}" for b in range(32) if unknown >> b & 1]
        return names

    def unknown(self, word: str) -> int:
        return self.word(word) & ~F.KNOWN_MASK[word]

    def check(self, *, writing: bool, where: str) -> None:
        """ext4's rules: unknown incompat refuses reading, unknown ro_compat refuses writing."""
        if self.unknown(F.INCOMPAT):
            raise UnsupportedFeatureError(
                f"{where}: unknown incompatible feature bits 0x{self.unknown(F.INCOMPAT):x}; "
                "this version of vexfs-tools can not read it")
        if writing and self.unknown(F.RO_COMPAT):
            raise UnsupportedFeatureError(
                f"{where}: unknown read-only-compatible feature bits 0x{self.unknown(F.RO_COMPAT):x}; "
                "this version of vexfs-tools may read it but will not write to it")


def new_superblock(**fields) -> Container:
    """A superblock with every field zero, then `fields`."""
    sb = Superblock.parse(bytes(C.SUPERBLOCK_SIZE))
    sb.update(fields)
    return sb
