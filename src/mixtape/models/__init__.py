"""mixtape.models: audio encoders (backbone registry), the COLA head and similarities, the contrastive loss.

Training builds ``Encoder → ProjectionHead → similarity → contrastive_loss``; evaluation, search and
export keep only the ``Encoder`` (its pooled embedding is the representation).
"""

from mixtape.models.embedding import EmptyTrackError, embed_tracks
from mixtape.models.encoder import Encoder, InputShapeError
from mixtape.models.heads import (
    SIMILARITIES,
    BilinearSimilarity,
    CosineSimilarity,
    ProjectionHead,
    SimilarityError,
    build_similarity,
)
from mixtape.models.losses import (
    DuplicateTrackError,
    ScoreMatrixError,
    check_distinct_tracks,
    contrastive_loss,
    in_batch_accuracy,
)
from mixtape.models.registry import BACKBONES, BackboneError, backbone_names, build_backbone, register_backbone

# Importing the built-in backbones registers them, so BACKBONES is complete after `import mixtape.models`.
from mixtape.models import efficientnet, resnet, small, vggish  # noqa: E402,F401  isort: skip

__all__ = [
    "BACKBONES",
    "SIMILARITIES",
    "BackboneError",
    "BilinearSimilarity",
    "CosineSimilarity",
    "DuplicateTrackError",
    "EmptyTrackError",
    "Encoder",
    "InputShapeError",
    "ProjectionHead",
    "ScoreMatrixError",
    "SimilarityError",
    "backbone_names",
    "build_backbone",
    "build_similarity",
    "check_distinct_tracks",
    "contrastive_loss",
    "embed_tracks",
    "in_batch_accuracy",
    "register_backbone",
]
