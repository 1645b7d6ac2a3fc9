"""The ``trajectory_diffusion`` task: train a conditional trajectory diffusion model (GeoTDM) on dynamics data,
score its K samples with minADE/minFDE (:class:`TrajectoryDiffusionTask`)."""

from ._task import TrajectoryDiffusionTask, sample_metrics

__all__ = ["TrajectoryDiffusionTask", "sample_metrics"]
