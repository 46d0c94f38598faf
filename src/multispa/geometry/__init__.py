"""Pure, vectorised geometry (no I/O, no randomness, no globals).

Conventions: OpenCV camera axes (+x right, +y down, +z forward); transforms named ``dst_from_src``;
metres and degrees; poses float64, big point arrays float32.

Modules (import them directly; this package imports none of them):

- ``transforms``: ``invert_rigid``, ``apply_transform``, ``relative_pose`` (cam1_from_cam2),
  ``rigid_transform``, ``rigidity_defect`` (how far a 4×4 matrix is from a rigid transform),
  and ``expect_shape`` (the shape check raising ``ShapeError``).
- ``camera``: ``project_points`` / ``unproject_depth`` / ``unproject_points``, ``in_bounds``
  (z > 0, 0 <= u < W, 0 <= v < H); the pixel ``(col, row)`` sits at ``(u, v) = (col, row)``.
- ``coords``: ``round_half_away`` (exact, never Python ``round``), ``pixels_to_norm1000``
  (clamped floor to 0..999), ``norm1000_to_pixels`` (cell centre, the scorer's inverse).
- ``visibility``: depth-tested vertex visibility (docs/labels.md#visibility; two-sided tolerance,
  depth pixel through the depth camera's own intrinsics), as a mask or CSR-ready int32 indices.
- ``overlap``: bit-packed visibility (uint64 words), exact all-pairs intersections by popcount
  (dense or block-skipping), IoU overlap in percent, pairs with overlap > 0, object visible
  counts by ``bincount``, and ``spatial_order`` (a Z-order vertex permutation that makes block
  skipping effective).
- ``angles``: yaw/pitch of the optical axis in the z-up aligned world, ``wrap_deg`` into
  (−180, 180], relative yaw/pitch (positive = left / up), relative translation, and the signed
  floor-plan angle (``floor_angle_deg``, positive = left).
- ``boxes``: gravity-aligned minimum-area oriented boxes (rotating calipers on the xy hull).
- ``coverage``: exact minimal covering frame sets (singletons and pairs), docs/labels.md#coverage.
- ``rigid``: rigid-body grouping of 3-D tracks (docs/labels.md#rigid-groups).
- ``static_poses``: camera poses from the static scene of camera-frame tracks (the dominant rigid
  group, batched Kabsch with a reflection guard, trimmed of tracks that do not stay rigid; world
  = frame 0's camera) and the drift of given poses.
- ``view_coverage``: greedy coverage of a scene by a few views over bit-packed visibility (lazy
  exact popcounts; the N-view sets).
- ``proximity``: exact closest-point distances between point sets (cell index + k-d trees) and
  from query points to a set.
"""
