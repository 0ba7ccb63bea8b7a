"""Which frames the CLIP scores read (no torch: the recipe and the Dagster layer import it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from openvid_assets.media.frames import at_fractions, evenly_spaced

TemporalMode = Literal["adjacent", "spread"]


@dataclass(frozen=True)
class CLIPSampling:
    """Which frames the shared CLIP pass embeds: the union of what each CLIP score needs.

    Aesthetics: frame ``int(p * n)`` at each position (Open-Sora's choice). Temporal consistency, as the paper
    defines it, compares *adjacent* frames: ``adjacent`` takes the pair (i, i + 1) at each temporal position, by
    default the aesthetic ones, so the two scores share frames (6 forwards a video instead of 11). ``spread``
    (the project's earlier definition, kept as an option) compares consecutive frames of ``temporal_frames``
    spread over the whole video, which mixes ordinary motion into the score and can step over flicker.
    """

    aesthetic_positions: tuple[float, ...] = (0.1, 0.5, 0.9)
    temporal: TemporalMode = "adjacent"
    temporal_positions: tuple[float, ...] = (0.1, 0.5, 0.9)
    temporal_frames: int = 8  # spread only

    def aesthetic_indices(self, num_frames: int) -> list[int]:
        return at_fractions(num_frames, self.aesthetic_positions)

    def temporal_pairs(self, num_frames: int) -> list[tuple[int, int]]:
        """The frame pairs whose CLIP cosines are averaged, in order."""
        if num_frames < 2:
            return []
        if self.temporal == "spread":
            frames = evenly_spaced(num_frames, self.temporal_frames)
            return list(zip(frames, frames[1:]))
        starts = sorted({min(int(p * num_frames), num_frames - 2) for p in self.temporal_positions})
        return [(s, s + 1) for s in starts]

    def temporal_indices(self, num_frames: int) -> list[int]:
        return sorted({i for pair in self.temporal_pairs(num_frames) for i in pair})

    def union(self, num_frames: int) -> list[int]:
        return sorted(set(self.aesthetic_indices(num_frames)) | set(self.temporal_indices(num_frames)))

    def temporal_params(self) -> dict[str, Any]:
        if self.temporal == "spread":
            return {"temporal": "spread", "temporal_frames": self.temporal_frames}
        return {"temporal": "adjacent", "temporal_positions": list(self.temporal_positions)}

    def params(self) -> dict[str, Any]:
        return {
            "aesthetic_positions": list(self.aesthetic_positions),
            "aesthetic_frames": "int(p*n)",
            **self.temporal_params(),
        }
