"""Vector files (docs/FORMAT.md section 9): regular files of the extended layout, flagged
VECTOR, that hold a collection of vectors, their ids and checksums.

The package's job, by module: the bytes of a vector file (codec; offsets from
format/vector.py); finding and reading them in an image and putting them in (files, store;
through the volume library's file I/O, never the device directly); host vector files,
.npy and TEXMEX (sources); exact k-nearest-neighbour search (search) and the scoring of
another engine's answers against it (verify), which take queries, k and metrics by one set
of rules and compute distances by one definition (queries); and what `vexfs vectors`,
`vexfs search` and `vexfs verify` do, without the printing (manage; cli/vectors.py prints).
"""
