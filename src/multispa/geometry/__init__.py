"""Pure, vectorised geometry (no I/O, no randomness, no globals).

Conventions: OpenCV camera axes (+x right, +y down, +z forward); transforms named ``dst_from_src``;
metres and degrees; poses float64, big point arrays float32.
"""
