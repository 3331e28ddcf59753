"""Train the tiny digits Vision Transformer and write its float weights (``digits_vit.npz``).

Needs the ``train`` extra (PyTorch, CPU build) and scikit-learn. Fixed seeds and a single
thread-count make a run repeatable on one machine; the shipped weights are the output of::

    python examples/digits_vit/train.py

It takes about a minute on two cores. Only the training split is used for training; the
held-out split is evaluated once at the end, for the record. The script finally checks that the
numpy forward pass (``lutcodegen.model.vit``) reproduces PyTorch's logits, so that everything
downstream can work without PyTorch.
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lutcodegen.model import digits, vit

HERE = Path(__file__).resolve().parent


class Block(nn.Module):
    """Pre-norm encoder layer; parameter names map 1:1 onto the weights file."""

    def __init__(self, c: vit.ViTConfig) -> None:
        super().__init__()
        self.c = c
        self.ln1 = nn.LayerNorm(c.dim, eps=vit.LN_EPS)
        self.qkv = nn.Linear(c.dim, 3 * c.dim)
        self.out = nn.Linear(c.dim, c.dim)
        self.ln2 = nn.LayerNorm(c.dim, eps=vit.LN_EPS)
        self.fc1 = nn.Linear(c.dim, c.mlp_dim)
        self.fc2 = nn.Linear(c.mlp_dim, c.dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.c
        n, t, _ = x.shape
        q, k, v = self.qkv(self.ln1(x)).split(c.dim, dim=-1)
        q, k, v = (z.reshape(n, t, c.heads, c.head_dim).transpose(1, 2) for z in (q, k, v))
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(c.head_dim), dim=-1)
        x = x + self.out((att @ v).transpose(1, 2).reshape(n, t, c.dim))
        return x + self.fc2(nn.functional.gelu(self.fc1(self.ln2(x)), approximate="tanh"))


class TinyViT(nn.Module):
    def __init__(self, c: vit.ViTConfig) -> None:
        super().__init__()
        self.c = c
        self.patch = nn.Linear(c.patch_size, c.dim)
        self.cls = nn.Parameter(torch.zeros(c.dim))
        self.pos = nn.Parameter(0.02 * torch.randn(c.tokens, c.dim))
        self.blocks = nn.ModuleList(Block(c) for _ in range(c.layers))
        self.lnf = nn.LayerNorm(c.dim, eps=vit.LN_EPS)
        self.head = nn.Linear(c.dim, c.classes)

    def forward(self, patches: torch.Tensor) -> torch.Tensor:
        emb = self.patch(patches) + self.pos[1:]
        cls = (self.cls + self.pos[0]).expand(patches.shape[0], 1, -1)
        x = torch.cat([cls, emb], dim=1)
        for block in self.blocks:
            x = block(x)
        return self.head(self.lnf(x[:, 0]))

    def params_numpy(self) -> dict[str, np.ndarray]:
        """Parameters under the weights file's names (``l{i}_qkv_w`` ...)."""
        out = {}
        for name, value in self.state_dict().items():
            key = name.replace("blocks.", "l").replace(".weight", "_w").replace(".bias", "_b")
            key = key.replace("ln1_w", "ln1_g").replace("ln2_w", "ln2_g").replace("lnf_w", "lnf_g")
            key = key.replace(".", "_")
            out[key] = value.detach().cpu().numpy().astype(np.float64)
        return out


def shift_augment(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Random translation by up to one pixel with zero fill: cheap, label-preserving."""
    n = images.shape[0]
    padded = nn.functional.pad(images, (1, 1, 1, 1))
    dy = torch.randint(0, 3, (n,), generator=gen)
    dx = torch.randint(0, 3, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(8)[None, :])[:, :, None]
    cols = (dx[:, None] + torch.arange(8)[None, :])[:, None, :]
    return padded[torch.arange(n)[:, None, None], rows, cols]


def to_patches(images: torch.Tensor, c: vit.ViTConfig) -> torch.Tensor:
    g, p = c.image_size // c.patch, c.patch
    x = images.reshape(-1, g, p, g, p).permute(0, 1, 3, 2, 4)
    return x.reshape(-1, g * g, p * p) * vit.PIXEL_SCALE


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=150)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", type=Path, default=HERE / "digits_vit.npz")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    gen = torch.Generator().manual_seed(args.seed)
    c = vit.ViTConfig()
    data = digits.load()
    x_train = torch.tensor(data.train_images, dtype=torch.float32)
    y_train = torch.tensor(data.train_labels)
    model = TinyViT(c)
    params = sum(p.numel() for p in model.parameters())
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
    steps_per_epoch = math.ceil(len(y_train) / 64)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=3e-3, total_steps=args.epochs * steps_per_epoch, pct_start=0.1
    )
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    start = time.monotonic()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(y_train), generator=gen)
        total = 0.0
        for b in range(steps_per_epoch):
            idx = order[b * 64 : (b + 1) * 64]
            logits = model(to_patches(shift_augment(x_train[idx], gen), c))
            loss = loss_fn(logits, y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        if epoch % 10 == 0 or epoch == args.epochs - 1:
            print(f"epoch {epoch:3d}  loss {total / len(y_train):.4f}")
    model.eval()
    weights = model.params_numpy()
    with torch.no_grad():
        x_test = torch.tensor(data.test_images, dtype=torch.float32)
        torch_logits = model(to_patches(x_test, c)).numpy()
    numpy_logits = vit.forward(c, weights, data.test_images)
    gap = float(np.abs(torch_logits - numpy_logits).max())
    if gap > 1e-4:
        raise SystemExit(f"numpy forward differs from PyTorch by {gap}")
    train_acc = float(
        (vit.forward(c, weights, data.train_images).argmax(1) == data.train_labels).mean()
    )
    test_acc = float((numpy_logits.argmax(1) == data.test_labels).mean())
    vit.save_weights(args.output, c, weights)
    print(
        f"{params} parameters, {time.monotonic() - start:.0f} s; train accuracy "
        f"{100 * train_acc:.2f} %, test accuracy {100 * test_acc:.2f} % "
        f"({len(data.test_labels)} images); numpy vs PyTorch max |diff| {gap:.1e}"
    )
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
