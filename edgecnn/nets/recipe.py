"""Architecture as data: a recipe describes one member of the model family.

Recipes are JSON files in ``models/`` (installed as ``edgecnn.recipes``). Loading and
scaling them needs no TensorFlow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any, Mapping

from ..errors import ConfigError


def make_divisible(value: float, divisor: int = 8, min_value: int | None = None) -> int:
    """Round a channel count to a multiple of `divisor`, never more than 10% below `value`."""
    min_value = min_value or divisor
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return rounded


@dataclass(frozen=True)
class ConvSpec:
    filters: int
    kernel: int = 3
    strides: int = 1


@dataclass(frozen=True)
class Recipe:
    name: str
    description: str
    default_input_shape: tuple[int, int, int]
    stem: tuple[ConvSpec, ...]
    #: Filters of each downsampling block: [ReLU → SepConv → BN] × 2 (Conv for fused blocks),
    #: max-pool, projected residual.
    entry: tuple[int, ...]
    #: Leading entry blocks built with full 3x3 convolutions instead of separable ones.
    #: Early blocks are high-resolution and narrow, where int8 depthwise kernels do not pay:
    #: no faster than float on XNNPACK, 1.4-3.8x slower on ONNX Runtime, while full 3x3 convs
    #: are 2.1-4.2x faster in int8 (benchmarks/layer_int8.py). "Fused" blocks, as in
    #: EfficientNet-EdgeTPU and EfficientNetV2.
    fused_entry: int = 0
    #: Identity-residual blocks at the last entry width.
    middle_repeats: int = 0
    #: SeparableConv2D convs per middle block.
    middle_convs: int = 2
    exit_filters: int = 128
    dropout: float = 0.2
    #: BN momentum suited to short schedules: the default 0.99 lags the weights (see docs).
    bn_momentum: float = 0.9
    bn_epsilon: float = 1e-3

    def scaled(self, width: float) -> "Recipe":
        """Scale every channel count by `width`, keeping multiples of 8."""
        if width <= 0:
            raise ConfigError(f"width must be positive, got {width}")
        if width == 1.0:
            return self
        return replace(
            self,
            stem=tuple(replace(c, filters=make_divisible(c.filters * width)) for c in self.stem),
            entry=tuple(make_divisible(f * width) for f in self.entry),
            exit_filters=make_divisible(self.exit_filters * width),
        )

    def with_overrides(self, **overrides) -> "Recipe":
        known = set(self.__dataclass_fields__)
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigError(f"unknown recipe override(s) {unknown}; known: {sorted(known)}")
        if "stem" in overrides:
            overrides["stem"] = tuple(_conv(c) for c in overrides["stem"])
        if "entry" in overrides:
            overrides["entry"] = tuple(int(f) for f in overrides["entry"])
        return _validated(replace(self, **overrides))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Recipe":
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:  # a misspelt field would otherwise fall back to its default without a word
            raise ConfigError(
                f"recipe {data.get('name', '?')!r} has unknown field(s) {unknown}; known: {sorted(cls.__dataclass_fields__)}"
            )
        try:
            recipe = cls(
                name=str(data["name"]),
                description=str(data.get("description", "")),
                default_input_shape=tuple(int(x) for x in data["default_input_shape"]),
                stem=tuple(_conv(c) for c in data["stem"]),
                entry=tuple(int(f) for f in data["entry"]),
                fused_entry=int(data.get("fused_entry", cls.fused_entry)),
                middle_repeats=int(data.get("middle_repeats", cls.middle_repeats)),
                middle_convs=int(data.get("middle_convs", cls.middle_convs)),
                exit_filters=int(data["exit_filters"]),
                dropout=float(data.get("dropout", cls.dropout)),
                bn_momentum=float(data.get("bn_momentum", cls.bn_momentum)),
                bn_epsilon=float(data.get("bn_epsilon", cls.bn_epsilon)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"recipe {data.get('name', '?')!r} is malformed: {exc!r}") from None
        return _validated(recipe)

    @classmethod
    def from_json(cls, text: str) -> "Recipe":
        return cls.from_dict(json.loads(text))


def _conv(spec) -> ConvSpec:
    if isinstance(spec, ConvSpec):
        return spec
    if isinstance(spec, int):
        return ConvSpec(filters=spec)
    return ConvSpec(
        filters=int(spec["filters"]),
        kernel=int(spec.get("kernel", ConvSpec.kernel)),
        strides=int(spec.get("strides", ConvSpec.strides)),
    )


def _validated(recipe: Recipe) -> Recipe:
    channels = [c.filters for c in recipe.stem] + list(recipe.entry) + [recipe.exit_filters]
    bad = [c for c in channels if c <= 0 or c % 8]
    if bad:
        raise ConfigError(f"recipe {recipe.name!r}: channel counts must be positive multiples of 8, got {bad}")
    if not recipe.stem or not recipe.entry:
        raise ConfigError(f"recipe {recipe.name!r} needs at least one stem conv and one entry block")
    if not 0 <= recipe.fused_entry <= len(recipe.entry):
        raise ConfigError(
            f"recipe {recipe.name!r}: fused_entry must be between 0 and the {len(recipe.entry)} entry blocks, "
            f"got {recipe.fused_entry}"
        )
    if not 0.0 <= recipe.dropout < 1.0:
        raise ConfigError(f"recipe {recipe.name!r}: dropout must be in [0, 1), got {recipe.dropout}")
    if not 0.0 < recipe.bn_momentum < 1.0:
        raise ConfigError(f"recipe {recipe.name!r}: bn_momentum must be in (0, 1), got {recipe.bn_momentum}")
    return recipe
