"""Camera yaw/pitch and relative camera motion (docs/labels.md#yaw-pitch).

Convention: poses are ``world_from_cam`` in the **aligned** world (gravity-aligned, +z up); the
camera frame is OpenCV (+x right, +y down, +z forward). With ``f = R[:, 2]`` the optical axis in
the world:

- ``yaw = atan2(f_y, f_x)`` degrees, the azimuth about +z (counter-clockwise seen from above);
- ``pitch = asin(f_z / ‖f‖)`` degrees, positive when looking up;
- ``Δyaw = wrap(yaw₂ − yaw₁)`` into (−180, 180]; ``Δyaw > 0`` is a turn to the ``left``;
- ``Δpitch = pitch₂ − pitch₁``; ``Δpitch > 0`` is ``up``;
- the translation ``t = cam1_from_cam2[:3, 3]`` is camera 2's centre in camera-1 axes, metres:
  ``t_x > 0`` is ``right``, ``t_y > 0`` is ``down`` (camera y, not gravity), ``t_z > 0`` is
  ``forward``.

Dead zones (rule (d)) are the task generators' business; the label helpers here apply the bare
sign rules.
"""

from __future__ import annotations

import numpy as np

from multispa.geometry.transforms import expect_shape, relative_pose

__all__ = [
    "floor_angle_deg",
    "relative_translation_m",
    "relative_yaw_pitch_deg",
    "rotation_labels",
    "translation_labels",
    "wrap_deg",
    "yaw_pitch_deg",
]


def wrap_deg(angle_deg: np.ndarray | float) -> np.ndarray:
    """Wrap angles into (−180, 180] degrees (−180 itself maps to 180).

    Args:
        angle_deg: array or scalar, degrees.

    Returns:
        float64 array of the same shape.

    >>> wrap_deg(np.array([-180.0, 180.0, 190.0, -190.0, 540.0, 0.0, 359.0])).tolist()
    [180.0, 180.0, -170.0, 170.0, 180.0, 0.0, -1.0]
    """
    angle = np.asarray(angle_deg, dtype=np.float64)
    wrapped = 180.0 - np.mod(180.0 - angle, 360.0)
    # np.mod can return 360 for a tiny negative argument; keep the interval half-open.
    return np.where(wrapped <= -180.0, wrapped + 360.0, wrapped)


def yaw_pitch_deg(world_from_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Yaw and pitch of the optical axis of camera poses.

    Args:
        world_from_cam: ``(..., 4, 4)`` (or ``(..., 3, 3)`` rotations) camera-to-world, aligned
            world with +z up.

    Returns:
        ``yaw_deg``: ``(...)`` float64 in (−180, 180], ``atan2(f_y, f_x)`` (0 when looking
        straight up or down); ``pitch_deg``: ``(...)`` float64 in [−90, 90], positive up.

    >>> import numpy as np
    >>> looking_along_y = np.array([[1.0, 0, 0], [0, 0, 1], [0, -1, 0]])  # forward = +y, up = +z
    >>> [float(a) for a in yaw_pitch_deg(looking_along_y)]
    [90.0, 0.0]
    """
    matrix = np.asarray(world_from_cam, dtype=np.float64)
    if matrix.shape[-2:] == (4, 4):
        rotation = matrix[..., :3, :3]
    else:
        rotation = expect_shape(matrix, "(..., 3, 3)", "world_from_cam")
    forward = rotation[..., :, 2]
    norm = np.linalg.norm(forward, axis=-1)
    yaw = np.degrees(np.arctan2(forward[..., 1], forward[..., 0]))
    pitch = np.degrees(np.arcsin(np.clip(forward[..., 2] / norm, -1.0, 1.0)))
    return wrap_deg(yaw), pitch


def relative_yaw_pitch_deg(
    world_from_cam1: np.ndarray, world_from_cam2: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Camera rotation from 1 to 2: ``Δyaw = wrap(yaw₂ − yaw₁)``, ``Δpitch = pitch₂ − pitch₁``.

    Args:
        world_from_cam1: ``(..., 4, 4)`` pose of camera 1 (aligned world).
        world_from_cam2: ``(..., 4, 4)`` pose of camera 2; broadcasts with camera 1.

    Returns:
        ``dyaw_deg``: ``(...)`` float64 in (−180, 180], positive = turned left;
        ``dpitch_deg``: ``(...)`` float64, positive = tilted up.
    """
    yaw1, pitch1 = yaw_pitch_deg(world_from_cam1)
    yaw2, pitch2 = yaw_pitch_deg(world_from_cam2)
    return wrap_deg(yaw2 - yaw1), pitch2 - pitch1


def relative_translation_m(world_from_cam1: np.ndarray, world_from_cam2: np.ndarray) -> np.ndarray:
    """Camera 2's centre in camera-1 axes: ``(inv(E₁)·E₂)[:3, 3]``.

    Args:
        world_from_cam1: ``(..., 4, 4)`` pose of camera 1.
        world_from_cam2: ``(..., 4, 4)`` pose of camera 2.

    Returns:
        ``(..., 3)`` float64, metres, OpenCV axes of camera 1 (x right, y down, z forward).
    """
    return relative_pose(world_from_cam1, world_from_cam2)[..., :3, 3]


def translation_labels(translation_m: np.ndarray) -> tuple[str, str, str]:
    """Sign labels of one relative translation (no dead zone).

    Args:
        translation_m: ``(3,)`` camera 2's centre in camera-1 axes.

    Returns:
        ``(right|left, down|up, forward|backward)``.

    >>> translation_labels(np.array([0.2, -0.1, 0.0]))
    ('right', 'up', 'backward')
    """
    expect_shape(translation_m, "(3,)", "translation_m")
    x, y, z = (float(c) for c in translation_m)
    return (
        "right" if x > 0 else "left",
        "down" if y > 0 else "up",
        "forward" if z > 0 else "backward",
    )


def rotation_labels(dyaw_deg: float, dpitch_deg: float) -> tuple[str, str]:
    """Sign labels of one relative rotation (no dead zone).

    Returns:
        ``(left|right, up|down)``: ``left`` iff ``Δyaw > 0``, ``up`` iff ``Δpitch > 0``.

    >>> rotation_labels(30.0, -10.0)
    ('left', 'down')
    """
    return ("left" if dyaw_deg > 0 else "right", "up" if dpitch_deg > 0 else "down")


def floor_angle_deg(
    origin_xy: np.ndarray, ahead_xy: np.ndarray, target_xy: np.ndarray
) -> np.ndarray:
    """Signed floor-plan angle at ``origin`` from the direction of ``ahead`` to that of ``target``.

    Standing at ``a = origin`` and facing ``b = ahead`` (forward ``f = b − a``), the target ``c``
    lies at ``θ = atan2(f × w, f · w)`` degrees with ``w = c − a`` (``f × w = f_x w_y − f_y w_x``):
    counter-clockwise seen from above (+z up) is positive, so ``θ > 0`` is to the **left**.

    Args:
        origin_xy, ahead_xy, target_xy: ``(..., 2)`` floor-plan positions (x, y of the aligned
            world), metres; they broadcast.

    Returns:
        ``(...)`` float64 in [−180, 180] degrees (a target straight behind gives ±180).

    >>> targets = np.array([[0.0, 2], [0, -2], [-1, 0]])
    >>> floor_angle_deg(np.array([0.0, 0]), np.array([1.0, 0]), targets).tolist()
    [90.0, -90.0, 180.0]
    """
    origin = np.asarray(origin_xy, dtype=np.float64)
    forward = np.asarray(ahead_xy, dtype=np.float64) - origin
    toward = np.asarray(target_xy, dtype=np.float64) - origin
    expect_shape(forward, "(..., 2)", "ahead_xy - origin_xy")
    expect_shape(toward, "(..., 2)", "target_xy - origin_xy")
    cross = forward[..., 0] * toward[..., 1] - forward[..., 1] * toward[..., 0]
    dot = forward[..., 0] * toward[..., 0] + forward[..., 1] * toward[..., 1]
    return np.degrees(np.arctan2(cross, dot))
