"""Configuration of the synthetic dataset writer; every default lives here.

``SynthConfig`` holds what a user chooses (counts, seed, ``small``, workers and optional
overrides); ``SynthConfig.settings()`` resolves it against the realistic or the small preset into
a ``SynthSettings`` with every value concrete. Only ``workers`` does not affect the output bytes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from multispa.errors import ConfigError


@dataclass(frozen=True)
class SynthSettings:
    """Concrete generation parameters (one preset, possibly overridden).

    Sizes are ``(width, height)`` in pixels; lengths in metres. ``adt_track_noise_m`` is the
    standard deviation of the Gaussian noise added to each coordinate of ADT-like tracks.
    """

    frames_per_scene: int
    tour_frames_per_scene: int
    color_size: tuple[int, int]
    depth_size: tuple[int, int]
    mesh_spacing_m: float
    segment_size_m: float
    objects_per_scene: tuple[int, int]
    wall_items_per_scene: tuple[int, int]
    invalid_poses: tuple[int, int]
    depth_hole_fraction: float
    jpeg_quality: int
    depth_zlib_level: int
    camera_speed_m_s: float
    fps: float
    clip_frames: int
    tracks_per_clip: int
    adt_size: tuple[int, int]
    pstudio_size: tuple[int, int]
    clip_fps: float
    adt_track_noise_m: float
    scene_variants: bool = True


DEFAULT_SETTINGS = SynthSettings(
    frames_per_scene=240,
    tour_frames_per_scene=100,
    color_size=(1296, 968),
    depth_size=(640, 480),
    mesh_spacing_m=0.03,
    segment_size_m=0.4,
    objects_per_scene=(5, 9),
    wall_items_per_scene=(1, 3),
    invalid_poses=(3, 6),
    depth_hole_fraction=0.005,
    jpeg_quality=90,
    depth_zlib_level=1,
    camera_speed_m_s=0.3,
    fps=30.0,
    clip_frames=90,
    tracks_per_clip=400,
    adt_size=(512, 512),
    pstudio_size=(640, 360),
    clip_fps=30.0,
    adt_track_noise_m=0.0015,
)
"""Realistic sizes: ScanNet colour 1296×968, depth 640×480, ~1e5–3e5 mesh vertices."""

SMALL_SETTINGS = dataclasses.replace(
    DEFAULT_SETTINGS,
    frames_per_scene=60,
    tour_frames_per_scene=90,
    color_size=(160, 120),
    depth_size=(80, 60),
    mesh_spacing_m=0.1,
    objects_per_scene=(5, 6),
    wall_items_per_scene=(1, 2),
    invalid_poses=(3, 4),
    camera_speed_m_s=0.5,
    clip_frames=24,
    tracks_per_clip=64,
    adt_size=(128, 128),
    pstudio_size=(160, 90),
)
"""Tiny, fast data for tests: a full run with 2 scenes and 2 clips takes a few seconds."""


@dataclass(frozen=True)
class SynthConfig:
    """What to generate.

    Attributes:
        scenes: number of ScanNet-like scenes (``scene0000_00``, ...); about a quarter are val.
        clips: number of TAPVid-3D-like clips, alternately ADT-like and PStudio-like.
        seed: master seed; the same seed gives the same bytes.
        small: use the small preset (tests) instead of realistic sizes.
        workers: processes used to write units in parallel (no effect on the output).
        frames_per_scene, clip_frames, tracks_per_clip: optional overrides of the preset.
        track_noise_mm: optional override of the ADT track noise (standard deviation per
            coordinate, millimetres; 0 for exact tracks).
        variants: write the real-data pitfalls of ``multispa.synth.scannet_variants`` (a rescan
            of room 0 as a thinned ``posed_images`` export with a duplicated ``segGroups`` list,
            thin objects in front of walls and an ambiguous NYU40 pair in room 0, a label map).
    """

    scenes: int = 4
    clips: int = 4
    seed: int = 0
    small: bool = False
    workers: int = 2
    frames_per_scene: int | None = None
    clip_frames: int | None = None
    tracks_per_clip: int | None = None
    track_noise_mm: float | None = None
    variants: bool = True

    def __post_init__(self) -> None:
        checks = {
            "scenes": (self.scenes, 0),
            "clips": (self.clips, 0),
            "workers": (self.workers, 1),
            "seed": (self.seed, 0),
            "frames_per_scene": (self.frames_per_scene, 10),
            "clip_frames": (self.clip_frames, 2),
            "tracks_per_clip": (self.tracks_per_clip, 1),
        }
        for name, (value, minimum) in checks.items():
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                raise ConfigError(f"synth {name} must be an integer, got {value!r}")
            if value < minimum:
                raise ConfigError(f"synth {name} must be >= {minimum}, got {value}")
        noise = self.track_noise_mm
        if noise is not None and (
            isinstance(noise, bool)
            or not isinstance(noise, int | float)
            or not 0 <= noise <= 100
        ):
            raise ConfigError(f"synth track_noise_mm must be a number in [0, 100], got {noise!r}")
        if not isinstance(self.variants, bool):
            raise ConfigError(f"synth variants must be True or False, got {self.variants!r}")
        if self.scenes > 10000:
            raise ConfigError(f"synth scenes must be <= 10000 (scene ids), got {self.scenes}")

    def settings(self) -> SynthSettings:
        """The preset chosen by ``small`` with this config's overrides applied."""
        preset = SMALL_SETTINGS if self.small else DEFAULT_SETTINGS
        overrides: dict[str, float] = {
            name: getattr(self, name)
            for name in ("frames_per_scene", "clip_frames", "tracks_per_clip")
            if getattr(self, name) is not None
        }
        if self.track_noise_mm is not None:
            overrides["adt_track_noise_m"] = self.track_noise_mm / 1000.0
        return dataclasses.replace(preset, scene_variants=self.variants, **overrides)

    def to_json(self) -> dict[str, object]:
        """Everything that determines the output (``workers`` excluded), JSON-ready."""
        return {
            "scenes": self.scenes,
            "clips": self.clips,
            "seed": self.seed,
            "small": self.small,
            "settings": dataclasses.asdict(self.settings()),
        }
