"""Model surgery for transfer learning: which stages of a pretrained network freeze, train or
are replaced, on a copy (the shared backbone is never changed).
"""

from __future__ import annotations

import copy
from typing import Sequence

import timm
from torch import Tensor, nn

from dltl_core.backbones import Backbone
from dltl_core.device import seed_everything


class PartlyFrozen(nn.Module):
    """A timm model whose first stages are frozen: no gradients, BatchNorm kept in eval mode.

    Without the eval override, ``model.train()`` would let the frozen BatchNorm
    layers keep updating their running statistics from small batches.
    """

    def __init__(self, model: nn.Module, frozen: Sequence[str], bn_frozen: bool = False) -> None:
        super().__init__()
        self.net = model
        self.frozen = list(frozen)
        self.bn_frozen = bn_frozen  # the trained stages' BatchNorm keeps its statistics too
        for name in self.frozen:
            self.net.get_submodule(name).requires_grad_(False)

    def train(self, mode: bool = True) -> "PartlyFrozen":
        super().train(mode)
        for name in self.frozen:
            self.net.get_submodule(name).eval()
        if self.bn_frozen:
            for m in self.net.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def finetune_model(backbone: Backbone, num_classes: int, unfreeze_blocks: int | None = None
                   ) -> tuple[PartlyFrozen, list[nn.Parameter], list[nn.Parameter]]:
    """A trainable copy of the backbone with a new ``num_classes`` head.

    Args:
        unfreeze_blocks: train only the last N of the network's stages (``feature_stages``:
            stem, stages..., final conv; timm's coarse layer groups for other architectures);
            the new head always trains. None trains everything.

    Returns:
        (model, backbone parameters to train, head parameters).
    """
    net = copy.deepcopy(backbone.model)  # the shared backbone stays untouched
    net.reset_classifier(num_classes)
    net.requires_grad_(True)
    head = list(net.get_classifier().parameters())
    frozen: list[str] = []
    if unfreeze_blocks is not None:
        frozen = _frozen_names(net, unfreeze_blocks)
    model = PartlyFrozen(net, frozen)
    head_ids = {id(p) for p in head}
    body_params = [p for p in net.parameters() if p.requires_grad and id(p) not in head_ids]
    return model, body_params, head


def feature_stages(net: nn.Module) -> list[nn.Module] | None:
    """The network's feature stages in forward order (stem, each stage of timm's coarse
    layer groups, final conv); ``net.forward_head`` follows them.

    Running them in turn equals ``net.forward_features``. Returns None for architectures
    whose forward is not such a chain (e.g. a ViT's tokens): they fine-tune on the photos.
    The returned containers only reference ``net``'s modules; nothing is copied or changed.
    """
    from timm.models.convnext import ConvNeXt
    from timm.models.efficientnet import EfficientNet
    from timm.models.resnet import ResNet

    if getattr(net, "grad_checkpointing", False):
        return None
    if isinstance(net, EfficientNet):
        return [nn.Sequential(net.conv_stem, net.bn1), *net.blocks, nn.Sequential(net.conv_head, net.bn2)]
    if isinstance(net, ResNet):
        return [nn.Sequential(net.conv1, net.bn1, net.act1, net.maxpool),
                net.layer1, net.layer2, net.layer3, net.layer4]
    if isinstance(net, ConvNeXt):
        return [net.stem, *net.stages, net.norm_pre]
    return None


def stage_names(net: nn.Module) -> list[str]:
    """Readable names of ``feature_stages(net)`` for the page (empty if unsupported)."""
    stages = feature_stages(net) or []
    return ["stem"] + [f"stage {i}" for i in range(1, len(stages) - 1)] + ["final conv"] if stages else []


class TailNet(nn.Module):
    """The trainable last stages and head of ``net``, fed the frozen stages' activations.

    It shares its parameters with ``net`` (a fine-tuning copy): after training on
    cached activations, ``net`` itself is the fine-tuned network for photos.
    """

    def __init__(self, net: nn.Module, cut: int, bn_frozen: bool = False) -> None:
        super().__init__()
        self.net = net
        self.cut = cut
        self.bn_frozen = bn_frozen
        self.stages = nn.ModuleList(feature_stages(net)[cut:])

    def train(self, mode: bool = True) -> "TailNet":
        """With ``bn_frozen``, BatchNorm keeps its pretrained statistics (its scale and shift
        still train): small batches of a few species would otherwise drag the running means
        away from what the probe-initialised head was fitted to."""
        super().train(mode)
        if self.bn_frozen:
            for m in self.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def features(self, a: Tensor) -> Tensor:
        """Pooled features (B, D) from the activations ``a`` at the cut."""
        for stage in self.stages:
            a = stage(a)
        return self.net.forward_head(a, pre_logits=True)

    def forward(self, a: Tensor) -> Tensor:
        return self.net.get_classifier()(self.features(a))


def frozen_part(backbone: Backbone, cut: int) -> nn.Module:
    """The shared backbone's first ``cut`` stages as one module (references, not copies:
    run it only in inference mode; it is never trained, moved or put in train mode)."""
    return nn.Sequential(*feature_stages(backbone.model)[:cut])


def cut_index(backbone: Backbone, unfreeze_blocks: int) -> int | None:
    """Index of the first trainable stage, or None if the architecture is unsupported."""
    stages = feature_stages(backbone.model)
    if stages is None:
        return None
    return len(stages) - max(0, min(unfreeze_blocks, len(stages)))


def _frozen_names(net: nn.Module, unfreeze_blocks: int) -> list[str]:
    """Sub-module names of all but the last ``unfreeze_blocks`` stages: ``feature_stages`` where
    supported (so the cached activations are exactly the frozen part's output), else timm's
    coarse layer groups (stem, stages...)."""
    stages = feature_stages(net)
    if stages is not None:
        names = {id(m): n for n, m in net.named_modules()}
        cut = len(stages) - max(0, min(unfreeze_blocks, len(stages)))
        # A stage that is one of the net's modules is frozen by name; a wrapper (the stem's
        # Sequential) by its children's names.
        return [names[id(m)] for st in stages[:cut] for m in ([st] if id(st) in names else st.children())]
    groups = timm.models.group_modules(net, net.group_matcher(coarse=True))
    ordered = [groups[k] for k in sorted(groups)]
    cls = _classifier_name(net)
    body = [g for g in ordered if not all(n.split(".")[0] == cls for n in g)]  # stem, stages
    keep = max(0, min(unfreeze_blocks, len(body)))
    return [n for g in body[: len(body) - keep] for n in g]


def _classifier_name(net: nn.Module) -> str:
    return net.pretrained_cfg.get("classifier", "classifier").split(".")[0]


def scratch_model(backbone_name: str, num_classes: int, seed: int) -> nn.Module:
    """The same architecture, random initial weights (seeded)."""
    seed_everything(seed)
    return timm.create_model(backbone_name, pretrained=False, num_classes=num_classes)


def _linear_head(in_features: int, num_classes: int, seed: int) -> nn.Linear:
    seed_everything(seed)
    return nn.Linear(in_features, num_classes)
