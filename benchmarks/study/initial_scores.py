"""Initial score-matrix spread of COLA's bilinear head vs cosine/0.1 on real demo patches (random encoder)."""

import numpy as np
import torch

from mixtape.audio import FeatureStore, PatchReader
from mixtape.models import Encoder, ProjectionHead, build_similarity

torch.set_num_threads(1)
store = FeatureStore.open("runs/demo/features")
reader = PatchReader(store, 128)
for seed in (0, 1, 2):
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    rows = rng.choice(len(store), 64, replace=False)
    a = torch.from_numpy(reader.random_patches(rows[:32], rng))
    p = torch.from_numpy(reader.random_patches(rows[:32], rng))
    enc = Encoder("small", 96, channels=[8, 16, 32, 64, 128]).train()
    head = ProjectionHead(enc.embedding_dim, 512)
    with torch.no_grad():
        za, zp = head(enc(a)), head(enc(p))
        for kind, kw in (("bilinear", {}), ("cosine", {"temperature": 0.1})):
            s = build_similarity(kind, 512, **kw)(za, zp)
            off = s[~torch.eye(32, dtype=bool)]
            prob = torch.softmax(s, 1)
            print(
                f"seed {seed} {kind:8s} logit std {off.std():.2f}  range {s.min():.1f}..{s.max():.1f}  mean max "
                f"softmax {prob.max(1).values.mean():.3f}"
            )
