"""The rescan variant: ``scene0000_01``, room 0 scanned again and exported as thinned
``posed_images`` (see :mod:`multispa.synth.scannet_variants`).

Files: ``scans/<scan>/`` holds the mesh (room 0's, in this scan's raw frame), the aggregation
with its ``segGroups`` written twice, the segments and ``<scan>.txt`` (``numColorFrames`` of the
full stream), but no ``.sens``; ``posed_images/<scan>/`` holds every
:data:`~multispa.synth.scannet_variants.EXPORT_STRIDE`-th frame of the stream renumbered 0, 1,
2… (colour JPEG, 16-bit depth PNG in mm, raw pose text) and ``intrinsic.txt`` (colour). K_depth
is K_color rescaled to the depth size (pixel centres kept), also written as the ``*_depth`` keys.

The truth sidecar is :func:`multispa.synth.scannet_synth.write_scene`'s, with ``frames`` listing
the exported frames by position (``index``) and stream index (``source_frame``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from multispa.synth.config import SynthSettings
from multispa.synth.scannet_mesh import aggregation_json
from multispa.synth.scannet_synth import (
    _matrix_json,
    _truth,
    build_room,
    build_scan,
    render_frame,
    write_annotations,
)
from multispa.synth.scannet_variants import (
    EXPORT_STRIDE,
    duplicated_groups,
    exported_frames,
    write_posed_frame,
    write_posed_intrinsic,
)
from multispa.synth.scannet_writer import write_json_atomic
from multispa.synth.world import invert_rigid


def write_rescan(
    scannet_root: Path,
    truth_root: Path,
    scan_id: str,
    room_index: int,
    room_rng: np.random.Generator,
    rng: np.random.Generator,
    settings: SynthSettings,
) -> list[Path]:
    """Write rescan ``scan_id`` of room ``room_index``.

    Args:
        scannet_root: the ScanNet root (``scans/`` and ``posed_images/`` are written below it).
        truth_root: folder of the truth sidecars.
        scan_id: e.g. ``scene0000_01``.
        room_index: the room's scene index.
        room_rng: a fresh generator of the room's first scan (``scene0000_00``): drawing the
            room from it again gives the same world.
        rng: this scan's own generator (camera path, intrinsics, alignment, depth holes).
        settings: generation parameters.

    Returns:
        The written paths.
    """
    room = build_room(room_rng, room_index, settings)
    model = build_scan(rng, room, settings, depth_from_color=True)
    frames_dir = scannet_root / "posed_images" / scan_id
    aggregation = duplicated_groups(aggregation_json(scan_id, model.mesh.groups))
    written = write_annotations(scannet_root / "scans" / scan_id, scan_id, model, aggregation)
    raw_from_aligned = invert_rigid(model.axis_alignment)
    written.append(write_posed_intrinsic(frames_dir, model.color))
    invalid = set(model.invalid_frames)
    kept = list(exported_frames(model.poses.shape[0]))
    for position, frame in enumerate(kept):
        pose = model.poses[frame]
        jpeg, depth_mm = render_frame(model, pose, settings, rng)
        raw_pose = np.full((4, 4), -np.inf) if frame in invalid else raw_from_aligned @ pose
        written += write_posed_frame(frames_dir, position, jpeg, depth_mm, raw_pose)
    truth = _truth(scan_id, model, model.mesh, settings)
    truth["export"] = {
        "layout": "posed_images",
        "stride": EXPORT_STRIDE,
        "note": "frames are the exported ones: index = file number (position), source_frame = "
        "index in the full stream of num_frames frames",
    }
    truth["frames"] = [
        {
            "index": position,
            "source_frame": frame,
            "valid": frame not in invalid,
            "world_from_cam": _matrix_json(model.poses[frame]),
        }
        for position, frame in enumerate(kept)
    ]
    truth_path = truth_root / f"{scan_id}.json"
    write_json_atomic(truth_path, truth)
    return [*written, truth_path]
